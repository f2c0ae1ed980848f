#!/usr/bin/env python3
"""Reads a report's data/*.parquet and data/*.csv with the tools people open them in
(pyarrow, pandas, polars, DuckDB) and fails unless every tool reads every table with the
promised types and the same rows, and the Parquet and CSV hold the same values.

    python3 scripts/check_exports.py REPORT_DIR...

Needs pyarrow, pandas, polars and duckdb (.ci/run installs them in a virtual environment).
"""

import json
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

TABLES = ("connections", "collisions", "timeline")

# Columns of each kind that every reader must type as promised (crates/report/src/export.rs).
TIMES = {"connections": ["ts_ns", "time_wait_start_ns"], "collisions": ["ts_ns"], "timeline": ["ts_ns"]}
UNSIGNED_64 = {"connections": ["uid", "prev_uid"], "collisions": ["uid", "prev_uid"], "timeline": ["new_connections"]}
UNSIGNED_32 = {"connections": ["orig_p", "resp_p"], "collisions": ["orig_p", "syn_seq"], "timeline": []}
FLAGS = {"connections": ["low_confidence", "client_side_reuse"], "collisions": ["edge_case", "inferred"], "timeline": ["observed"]}


def fail(message):
    print(f"check_exports: {message}", file=sys.stderr)
    sys.exit(1)


def check_table(directory, table, expected_rows):
    parquet = f"{directory}/data/{table}.parquet"
    csv = f"{directory}/data/{table}.csv"
    arrow = pq.read_table(parquet)
    frame = pl.read_parquet(parquet)
    pandas = pd.read_parquet(parquet)
    duck = duckdb.connect()
    duck_rows = duck.execute("select count(*) from read_parquet(?)", [parquet]).fetchone()[0]
    duck_types = dict(duck.execute("select column_name, column_type from (describe select * from read_parquet(?))", [parquet]).fetchall())
    from_csv = pl.read_csv(csv, infer_schema_length=None)

    rows = {"pyarrow": arrow.num_rows, "polars": frame.height, "pandas": len(pandas), "duckdb": duck_rows, "csv": from_csv.height}
    if len(set(rows.values())) != 1:
        fail(f"{parquet}: the readers disagree on the rows: {rows}")
    if expected_rows is not None and frame.height != expected_rows:
        fail(f"{parquet}: {frame.height} rows, summary.json says {expected_rows}")
    if frame.columns != from_csv.columns:
        fail(f"{table}: the Parquet and CSV columns differ")

    for column in TIMES[table]:
        if arrow.schema.field(column).type != pa.timestamp("ns", tz="UTC"):
            fail(f"{parquet}: {column} is {arrow.schema.field(column).type} in pyarrow")
        if frame.schema[column] != pl.Datetime("ns", "UTC"):
            fail(f"{parquet}: {column} is {frame.schema[column]} in polars")
        if str(pandas.dtypes[column]) != "datetime64[ns, UTC]":
            fail(f"{parquet}: {column} is {pandas.dtypes[column]} in pandas")
        if duck_types[column] not in ("TIMESTAMP_NS WITH TIME ZONE", "TIMESTAMPTZ_NS", "TIMESTAMP WITH TIME ZONE"):
            fail(f"{parquet}: {column} is {duck_types[column]} in DuckDB")
    for columns, polars_type, duck_type in ((UNSIGNED_64, pl.UInt64, "UBIGINT"), (UNSIGNED_32, pl.UInt32, "UINTEGER"), (FLAGS, pl.Boolean, "BOOLEAN")):
        for column in columns[table]:
            if frame.schema[column] != polars_type:
                fail(f"{parquet}: {column} is {frame.schema[column]} in polars")
            if duck_types[column] != duck_type:
                fail(f"{parquet}: {column} is {duck_types[column]} in DuckDB")

    # The same values in both formats: times compared as their ns, as the CSV writes them.
    as_ns = frame.with_columns(pl.col(name).dt.epoch("ns") for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime))
    from_csv = from_csv.select(pl.col(name).cast(as_ns.schema[name]) for name in as_ns.columns)
    if not as_ns.equals(from_csv):
        fail(f"{table}: the Parquet and CSV values differ")
    print(f"{parquet}: {frame.height} rows, {frame.width} columns, read alike by pyarrow {pa.__version__}, pandas {pd.__version__}, polars {pl.__version__}, DuckDB {duckdb.__version__}, equal to the CSV")


def main():
    if len(sys.argv) < 2:
        fail("usage: check_exports.py REPORT_DIR...")
    for directory in sys.argv[1:]:
        with open(f"{directory}/data/summary.json") as f:
            summary = json.load(f)
        expected = {"connections": summary["connections"], "collisions": summary["collisions"]["total"], "timeline": None}
        for table in TABLES:
            check_table(directory, table, expected[table])


if __name__ == "__main__":
    main()
