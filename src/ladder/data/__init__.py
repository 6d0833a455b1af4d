"""The corpus on its way to tokens: sources, the tokenizer, the shard format, curriculum plans, cloze items."""
