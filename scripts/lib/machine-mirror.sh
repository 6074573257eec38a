# shellcheck shell=bash
# Sourced by scripts/fetch-kernel.sh and scripts/nspawn-tree.sh.
# machine_uri SUITE: the first URI the machine's own apt sources use for SUITE
# (deb822 .sources files, then one-line .list files); prints nothing if none.
# Reads /etc/apt only.
machine_uri() {
    local suite=$1 f
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -r $f ]] || continue
            awk -v s="$suite" '
                /^[[:space:]]*$/ { if (u != "" && hit) { print u; exit } u = ""; hit = 0; next }
                tolower($1) == "uris:" { u = $2 }
                tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) hit = 1 }
                END { if (u != "" && hit) print u }' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -r $f ]] || continue
            awk -v s="$suite" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^[a-z]+:\/\// && $(i+1) == s) { print $i; exit } }' "$f"
        done
    } | head -n1
}
