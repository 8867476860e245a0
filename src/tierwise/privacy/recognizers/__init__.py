"""Recognizers: each finds one family of sensitive values in (normalised) text.

A recognizer is any object with `entities` (the entity names it can emit) and
`find(text) -> Iterable[Finding]`. `registry.build_recognizers` picks the ones a config needs.
"""
