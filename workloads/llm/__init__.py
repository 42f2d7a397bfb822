"""Week 12 LLM inference demos: KV cache strategies (d79), prompt/prefix caching (d81), long context (d82)."""
