"""Datasets as one record type, partitions over clients, and batch collation."""

from hpc_fed.data.records import Record

__all__ = ["Record"]
