# Thin aliases for the names people type. Each pipeline target is one
# `cargo xtask` call; the logic, and the one parser of .aws-architecture,
# live in xtask/. `test`, `lint` and `rig-*` call the rig's scripts.
#
# Pushing to dev needs the dev registry and repository, from the environment:
#   ECR_REGISTRY_DEV  e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com
#   ECR_REPOSITORY    default batch-probe
# and AWS credentials for the dev account (AWS_PROFILE, or your usual setup).
# Images pushed from here are tagged `latest-<arch>-<variant>` and
# `make-<sha8>-<arch>-<variant>`, so the AWS console shows they came from a
# developer's machine; with uncommitted changes, only `make-<sha8>-dirty-...`.

XTASK := cargo xtask

.DEFAULT_GOAL := help
.PHONY: help dist-dev-gpu dist-dev-cpu dist-dev-all publish-dev-gpu publish-dev-cpu \
	publish-dev-all validate-arch docker-clean plan test lint rig-up rig-down

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

dist-dev-gpu: ## Build the GPU image locally
	$(XTASK) build --variant gpu

dist-dev-cpu: ## Build the CPU image locally
	$(XTASK) build --variant cpu

dist-dev-all: ## Build both images locally, concurrently
	$(XTASK) build --variant all

publish-dev-gpu: ## Build the GPU image and push it to dev
	$(XTASK) build --push --env dev --variant gpu

publish-dev-cpu: ## Build the CPU image and push it to dev
	$(XTASK) build --push --env dev --variant cpu

publish-dev-all: ## Build both images and push them to dev
	$(XTASK) build --push --env dev --variant all

validate-arch: ## Check .aws-architecture and show what would be built
	$(XTASK) plan

docker-clean: ## Remove this repository's local images (the shared build cache stays)
	$(XTASK) clean

plan: ## Show variants, platforms, runners and tags as JSON
	$(XTASK) plan --format json

test: ## Run every test on the local rig (installs and starts it)
	rig/test

lint: ## Lint the workflows, Dockerfiles and scripts
	rig/lint-workflows

rig-up: ## Start the local rig: engine, registries, AWS emulator
	rig/rig install && rig/rig up

rig-down: ## Stop the local rig
	rig/rig down
