"""Authoring core of the SDK: decorators, interfaces and the type engine."""
