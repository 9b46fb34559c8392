"""nodellm-orm: persist LLM conversations in SQL."""
