#!/usr/bin/env bash
# The notebooks as git stores them carry no outputs: `bash .ci/verify-notebooks.sh NBSTRIPOUT`.
# In a git checkout the staged content of each tracked notebook is checked, not the working file: while you
# use the explorer in place, JupyterLab autosaves outputs into notebooks/00_explorer.ipynb, and the git
# filter `make install` sets up (nbstripout --install) strips them before git sees them, so the checkout
# stays clean. Outside git (or for an untracked notebook) the file itself is checked.
set -euo pipefail
NBSTRIPOUT=$1
status=0
for notebook in notebooks/*.ipynb; do
    if git ls-files --error-unmatch "$notebook" >/dev/null 2>&1; then
        if ! git show ":$notebook" | "$NBSTRIPOUT" --verify >/dev/null; then
            echo "verify-notebooks: $notebook as staged carries outputs; run make notebooks and stage it again" >&2
            status=1
        fi
    elif ! "$NBSTRIPOUT" --verify "$notebook"; then
        status=1
    fi
done
exit $status
