"""Parsers turn model output (text or messages) into structured answers. They never raise."""

from verifiers.parsers.parser import Parser
from verifiers.parsers.think_parser import ThinkParser
from verifiers.parsers.xml_parser import XMLParser

__all__ = ["Parser", "ThinkParser", "XMLParser"]
