"""Tests of the CloudConvert API emulator (``apidriver.emulator``).

A package so that its helper modules (``support``, ``vcr``) import as
``tests.emulator``-local names and never clash with other test folders.
"""
