"""Paged KV cache bookkeeping (torch-free except quant.py)."""
