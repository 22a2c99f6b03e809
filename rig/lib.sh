# shellcheck shell=bash
# rig/lib.sh: the helpers every rig script shares. Sourced, never run:
#
#   RIG_LOG_NAME=bases
#   source "$SCRIPT_DIR/lib.sh"
#
# RIG_LOG_NAME prefixes every message. Nothing here changes shell options;
# the scripts set their own (`set -euo pipefail`).

# ------------------------------------------------------------- messages --

log() { printf '%s: %s\n' "${RIG_LOG_NAME:-rig}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${RIG_LOG_NAME:-rig}" "$*" >&2; exit 1; }

# The comment block at the top of the calling script (line 2 up to `set -euo`),
# without the `# `: each script's --help.
usage_from_header() {
  sed -n '2,/^set -euo/p' "$1" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# --------------------------------------------------------- quiet output --

# Installers are quiet by default: the output of apt, dpkg, pip and
# debootstrap goes to RIG_LOG_FILE, whose path the caller prints.
# RIG_VERBOSE=1 (rig/rig --verbose) shows it on the terminal as well.
rig_verbose() { [[ ${RIG_VERBOSE:-0} == 1 ]]; }

# run_logged CMD [ARGS...]: run CMD (a program or a function) with its
# output appended to RIG_LOG_FILE. When it fails, the tail of its own
# output and the log's path go to stderr, and its exit status is returned.
run_logged() {
  local out rc=0
  out=$(mktemp)
  printf '\n$ %s\n' "$*" >>"$RIG_LOG_FILE"
  if rig_verbose; then
    "$@" 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}
  else
    "$@" >"$out" 2>&1 || rc=$?
  fi
  cat "$out" >>"$RIG_LOG_FILE"
  if ((rc != 0)); then
    if ! rig_verbose; then tail -n 25 "$out" | sed 's/^/  | /' >&2; fi
    log "failed (exit $rc): $*"
    log "full log: $RIG_LOG_FILE"
  fi
  rm -f "$out"
  return "$rc"
}

# ------------------------------------------------------------------ apt --

# The URI of the bookworm stanza in the machine's deb822 sources (or a
# one-line sources.list): the one Debian mirror this machine is known to
# reach. Other suites (forky) and debootstrap use it too.
debian_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    uri=$(awk '
      BEGIN { RS = ""; FS = "\n" }
      {
        u = ""; s = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)   { u = $i; sub(/^URIs:[ \t]*/, "", u); split(u, a, /[ \t]+/); u = a[1] }
          if ($i ~ /^Suites:/) { s = " " $i " " }
        }
        if (u != "" && s ~ /[ \t]bookworm[ \t]/) { print u; exit }
      }' "$f")
    if [[ -n $uri ]]; then printf '%s\n' "$uri"; return; fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' "$f")
    if [[ -n $uri ]]; then printf '%s\n' "$uri"; return; fi
  done
  die "no Debian bookworm mirror found in /etc/apt/sources.list.d/ or /etc/apt/sources.list"
}

# apt_fetch SUITE DIR PACKAGE...: download the current .deb of each PACKAGE
# in Debian SUITE into DIR/debs, through a private apt configuration (own
# sources list, own state and cache folders, an empty dpkg status) so the
# host's apt state never sees SUITE. Whatever version SUITE has today is
# taken; DIR/versions gets one "PACKAGE VERSION" line per package. Fails
# naming any PACKAGE that SUITE does not have. DIR is made anew.
apt_fetch() {
  local suite=$1 dir=$2 mirror
  shift 2
  mirror=$(debian_mirror)
  rm -rf "$dir"
  mkdir -p "$dir/sources.list.d" "$dir/preferences.d" "$dir/state/lists/partial" \
    "$dir/cache/archives/partial" "$dir/debs"
  : >"$dir/status"
  cat >"$dir/sources.list.d/$suite.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local apt_opts=(
    -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$dir/sources.list.d"
    -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$dir/preferences.d"
    -o "Dir::State=$dir/state" -o "Dir::State::status=$dir/status" -o "Dir::Cache=$dir/cache"
  )
  log "fetching $* from Debian $suite ($mirror)"
  run_logged apt-get "${apt_opts[@]}" update || die "apt-get update for $suite failed"
  local package version missing=()
  for package in "$@"; do
    version=$(apt-cache "${apt_opts[@]}" policy "$package" | awk '$1 == "Candidate:" { print $2 }')
    if [[ -z $version || $version == "(none)" ]]; then
      missing+=("$package")
    else
      printf '%s %s\n' "$package" "$version" >>"$dir/versions"
    fi
  done
  ((${#missing[@]} == 0)) ||
    die "Debian $suite no longer has ${missing[*]}: the rig needs it (see docs/test-rig notes in rig/rig)"
  # _apt cannot write into the rig's folder; download as root instead of warning.
  (cd "$dir/debs" && run_logged apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root download "$@") ||
    die "downloading $* from $suite failed"
}

# ------------------------------------------------------------------- pip --

# venv_install VENV PACKAGE...: make sure the Python virtualenv VENV holds
# each PACKAGE (pinned: name==version). VENV/.rig-packages lists what was
# installed, one a line, so a warm run installs nothing and a changed pin
# installs the new one. Several scripts may share one VENV.
venv_install() {
  local venv=$1 stamp=$1/.rig-packages package missing=()
  shift
  for package in "$@"; do
    grep -qxF -- "$package" "$stamp" 2>/dev/null || missing+=("$package")
  done
  ((${#missing[@]} > 0)) || [[ ! -x $venv/bin/pip ]] || return 0
  # A pyenv python3 may lack venv/ensurepip; Debian's has them (python3-venv).
  local py=python3
  python3 -c 'import venv, ensurepip' 2>/dev/null || py=/usr/bin/python3
  log "pip install ${missing[*]} into $venv"
  if [[ ! -x $venv/bin/pip ]]; then
    run_logged "$py" -m venv "$venv" || die "cannot make the virtualenv $venv"
  fi
  run_logged "$venv/bin/pip" install "${missing[@]}" ||
    die "pip install ${missing[*]} failed (PyPI cannot be reached inside the rig's namespace: install outside it)"
  printf '%s\n' "${missing[@]}" >>"$stamp"
}
