#!/bin/sh
# Copy /models/week$WEEK into $TARGET_DIR (the volume tritonserver's --model-repository points at).
set -eu
src="/models/week${WEEK}"
if [ ! -d "$src" ]; then
  echo "error: WEEK ${WEEK}: no repository; allowed: $(ls /models | sed 's/^week//' | tr '\n' ' ')" >&2
  exit 2
fi
if ! touch "${TARGET_DIR}/.probe" 2>/dev/null; then
  echo "error: TARGET_DIR ${TARGET_DIR}: not writable; mount the model volume there (e.g. -v models:${TARGET_DIR})" >&2
  exit 3
fi
rm -f "${TARGET_DIR}/.probe"
cp -R "$src/." "${TARGET_DIR}/"
echo "copied $(ls "$src" | wc -l) models of week ${WEEK} to ${TARGET_DIR}: $(ls "$src" | tr '\n' ' ')"
