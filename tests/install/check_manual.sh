#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check_manual.sh BUILD_DIR CLI: modelrepo(1) renders with man -l without a warning and
# holds every command and every option of --help; the bash completion completes commands,
# nested commands and options; meson install puts both where man and bash-completion look.
set -euo pipefail
build=$1
cli=$2
man_page=$build/tools/modelrepo/modelrepo.1
completion=$build/tools/modelrepo/completion/modelrepo
if ! command -v man >/dev/null; then
    echo "man is missing: scripts/setup test installs man-db"
    [ "${CI:-}" = true ] && exit 1
    exit 77
fi
fail() { echo "check_manual: $*"; exit 1; }

rendered=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$man_page" 2>"$build/man.warnings")
warnings=$(cat "$build/man.warnings")
rm -f "$build/man.warnings"
[ -z "$warnings" ] || fail "man -l warns: $warnings"
grep -q '^NAME' <<<"$rendered" || fail "no NAME section"

# Every command (and nested command) and every option of every --help is in the page.
check_help() { # PATH...
    local help line
    help=$("$cli" "$@" --help)
    while IFS= read -r line; do
        [[ $line =~ ^\ \ (-[^ ]+) ]] || continue
        for flag in ${BASH_REMATCH[1]//,/ }; do
            [ "$flag" = -h ] || [ "$flag" = --help ] && continue
            grep -qF -- "$flag" <<<"$rendered" || fail "modelrepo $* --help has $flag, the man page not"
        done
    done < <(sed -n '/^Options:/,/^[A-Z]/p' <<<"$help")
    local commands
    commands=$(sed -n '/^Subcommands:/,/^$/p' <<<"$help" | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
    for c in $commands; do
        grep -qE "^   $* ?$c\$|^   ${*:+$* }$c\$" <<<"$rendered" || fail "no section for 'modelrepo $* $c'"
        check_help "$@" "$c"
    done
}
check_help

# The completion, as bash runs it.
complete_words() { # WORDS... (the last is being completed)
    bash -c 'source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _modelrepo; echo "${COMPREPLY[*]}"' \
        "$completion" "$@"
}
[ "$(complete_words modelrepo se)" = serve ] || fail "modelrepo se<TAB>: $(complete_words modelrepo se)"
[ "$(complete_words modelrepo serve --tls-c)" = --tls-cert ] || fail "serve --tls-c<TAB>"
[ "$(complete_words modelrepo outbox d)" = drain ] || fail "outbox d<TAB>"
[ "$(complete_words modelrepo --source builtin: mod | tr ' ' '\n' | sort | xargs)" = "model models" ] || fail "--source X mod<TAB>: $(complete_words modelrepo --source builtin: mod)"
[ "$(complete_words modelrepo model gpt-4o --js)" = --json ] || fail "model SLUG --js<TAB>"

# Installed where man and bash-completion look.
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet
find "$dest" -path '*/share/man/man1/modelrepo.1' | grep -q . || fail "modelrepo.1 not installed in share/man/man1"
find "$dest" -path '*/share/bash-completion/completions/modelrepo' | grep -q . ||
    fail "the completion is not installed in share/bash-completion/completions"
echo "modelrepo(1) renders without warnings and holds every command and option; the completion completes; both are installed"
