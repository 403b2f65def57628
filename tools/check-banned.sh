#!/bin/sh
# Banned functions (STYLE.md §5): fails when one is called anywhere in src/.
set -eu
cd "$(dirname "$0")/.."
pat='\b(strcpy|strcat|strncpy|strncat|sprintf|vsprintf|strtok|gmtime|localtime|ctime|mktemp|atoi|atol|strtol|basename|dirname)[[:space:]]*\('
if grep -nE "$pat" src/*/*.c src/*/*.h | grep -vE '^\S+:\s*(/\*|\*)' | grep -v 'define ' ; then
        echo "banned function used (see STYLE.md §5)" >&2
        exit 1
fi
