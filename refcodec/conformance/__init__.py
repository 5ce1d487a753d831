"""Conformance (spec chapter 9): the runner that judges any decoder on the vectors, random streams, test models."""
