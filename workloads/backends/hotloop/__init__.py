"""One hot loop, four implementations; every one must return exactly what `ngram.ngram_python` returns."""
