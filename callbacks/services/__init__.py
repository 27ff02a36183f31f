"""Writes. Every change of state goes through a function here (HackSoft's services)."""
