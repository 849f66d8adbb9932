"""Text side of LST: class descriptions, prompt groups, text encoders (CLIP, offline MiniLM), frozen feature bank."""
