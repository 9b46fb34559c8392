"""The LLM client the ORM drives: the Python counterpart of the parts of @node-llm/core it needs."""
