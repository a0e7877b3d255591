"""Constraint attention (Li et al. 2025, Sec. 5): how much the answer attends to the prompt's constraint tokens,
with and without thinking, measured by teacher-forcing the answers an outcome table recorded.

Pure parts (no torch): `spans` (constraint spans -> token indices inside the chat-templated prompt),
`sequences` (the exact token sequences the local backend produced), `measure` (alpha/beta from attention
slices), `stats` (groups, bootstrap, AUC) and `report` (markdown + figures). `forward` is the only module that
imports torch; `cli` drives `thinkgate analyze attention`.
"""
