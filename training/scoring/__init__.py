"""Scorers for the offline pipeline.

- `training.scoring.ifeval`: IFEval strict/loose accuracy through lm-eval's checkers (deterministic).
- `training.scoring.complexbench`: ComplexBench rule-augmented LLM evaluation and DRFR, with an injected judge.

Importing this package is cheap: lm-eval and NLTK load on the first IFEval scoring call.
"""

from training.scoring.ifeval import InstructionScores, aggregate, score_example, score_response

__all__ = ["InstructionScores", "aggregate", "score_example", "score_response"]
