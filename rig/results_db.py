"""The results database: every run's identity, verdict and measurements, to trend and compare.

SQLAlchemy 2.0 Core on any database URL; by default a SQLite file. Where it lives:
``--db`` (a path or an SQLAlchemy URL such as ``postgresql+psycopg://lab@db/bmsrig``), else
``$BMSRIG_DB``, else ``results.sqlite`` beside the run folders: for ``bmsrig index RUN_DIR``
the run folder's parent (``runs/results.sqlite`` for the default ``runs/<run-id>``), for
``history`` and ``compare`` ``runs/results.sqlite`` under the working directory.

A run is indexed from its record alone (:func:`reports.summary_json.build_summary`), so
indexing is repeatable: re-indexing a run replaces its rows. Two tables:

- ``runs``: run_id (key), run_dir, board profile, serial, hw_revision, fw_version, verdict,
  exit_code, started/ended (ISO 8601 UTC), seed, defects, indexed_at;
- ``measurements``: run_id, test, name, key (test + name + declared conditions: the same
  quantity across runs), value, unit, limits, acceptance, U, decision rule, verdict,
  requirement, margin.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

DB_ENV = "BMSRIG_DB"
DB_FILE = "results.sqlite"
#: the conditions that tell one quantity from another across runs (set points, not readings)
KEY_CONDITIONS = ("cell", "temp_c", "chamber_c", "chamber_temp_c", "pack_current_a", "ramp_mv_per_s", "set_v",
                  "step_mv", "noise_mv_rms", "window_s")


def db_url(db: str | None, run_dir: Path | None = None) -> str:
    """The database URL: ``db`` (path or URL), ``$BMSRIG_DB``, or ``results.sqlite`` in the
    run folder's parent (``runs/`` when no run folder is given)."""
    text = db or os.environ.get(DB_ENV)
    if not text:
        base = Path(run_dir).resolve().parent if run_dir is not None else Path("runs")
        text = str(base / DB_FILE)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(path, "--db", f"cannot create its folder: {exc.strerror or exc}") from None
    return f"sqlite:///{path.resolve()}"


def _tables():
    from sqlalchemy import Column, Float, ForeignKey, Integer, MetaData, String, Table, Text

    md = MetaData()
    runs = Table(
        "runs", md,
        Column("run_id", String(200), primary_key=True),
        Column("run_dir", Text), Column("board_profile", String(200), index=True),
        Column("serial", String(200), index=True), Column("hw_revision", String(50)),
        Column("fw_version", String(100), index=True), Column("verdict", String(40)),
        Column("exit_code", Integer), Column("started", String(40)), Column("ended", String(40)),
        Column("seed", Integer), Column("defects", Text), Column("indexed_at", String(40)),
    )
    meas = Table(
        "measurements", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", String(200), ForeignKey("runs.run_id", ondelete="CASCADE"), index=True),
        Column("test", Text), Column("name", String(200)), Column("key", Text, index=True),
        Column("value", Float), Column("unit", String(40)),
        Column("low", Float), Column("high", Float), Column("acc_low", Float), Column("acc_high", Float),
        Column("u", Float), Column("decision_rule", String(40)), Column("verdict", String(10)),
        Column("requirement", String(100)), Column("margin", Float),
    )
    return md, runs, meas


@dataclass
class ResultsDB:
    """An open results database (``ResultsDB.open(url)``)."""

    engine: object
    runs: object
    meas: object
    url: str

    @classmethod
    def open(cls, url: str) -> "ResultsDB":
        from sqlalchemy import create_engine
        from sqlalchemy.exc import SQLAlchemyError

        md, runs, meas = _tables()
        try:
            engine = create_engine(url)
            md.create_all(engine)
        except (SQLAlchemyError, ValueError) as exc:
            raise ConfigError(url, "--db", f"cannot open the results database: {exc}") from None
        return cls(engine, runs, meas, url)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ write
    def index_run(self, run_dir: Path | str) -> dict:
        """Index (or re-index) one run folder from its record; returns its run row."""
        row, rows = run_rows(run_dir)
        run_id = row["run_id"]
        with self.engine.begin() as conn:
            conn.execute(self.meas.delete().where(self.meas.c.run_id == run_id))
            conn.execute(self.runs.delete().where(self.runs.c.run_id == run_id))
            conn.execute(self.runs.insert(), [row])
            if rows:
                conn.execute(self.meas.insert(), rows)
        return {**row, "n_measurements": len(rows)}

    # ------------------------------------------------------------------ read
    def history(self, board: str | None = None, serial: str | None = None, firmware: str | None = None,
                limit: int = 50) -> list[dict]:
        """Indexed runs, newest first, filtered by board profile, serial and firmware version."""
        from sqlalchemy import select

        q = select(self.runs)
        for col, val in ((self.runs.c.board_profile, board), (self.runs.c.serial, serial),
                         (self.runs.c.fw_version, firmware)):
            if val:
                q = q.where(col == val)
        q = q.order_by(self.runs.c.started.desc()).limit(int(limit))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def run(self, run_id: str) -> dict | None:
        from sqlalchemy import select

        with self.engine.connect() as conn:
            r = conn.execute(select(self.runs).where(self.runs.c.run_id == run_id)).first()
        return dict(r._mapping) if r else None

    def measurements(self, run_id: str) -> list[dict]:
        from sqlalchemy import select

        q = select(self.meas).where(self.meas.c.run_id == run_id).order_by(self.meas.c.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


def run_rows(run_dir: Path | str) -> tuple[dict, list[dict]]:
    """A run folder's ``runs`` row and ``measurements`` rows, from its record alone."""
    from reports.fmt import fmt_plain
    from reports.summary_json import build_summary

    from .record import load_summary, utc_now_iso

    run_dir = Path(run_dir)
    if not (run_dir / "record.jsonl").is_file():
        raise ConfigError(run_dir, "record.jsonl", "no run record in this folder")
    summary = load_summary(run_dir)
    doc = build_summary(summary)
    run_id = doc["run_id"] or run_dir.name
    b = doc["board"]
    row = {"run_id": run_id, "run_dir": str(run_dir.resolve()), "board_profile": b["profile"],
           "serial": b["serial"], "hw_revision": b["hw_revision"], "fw_version": b["fw_version"],
           "verdict": doc["verdict"], "exit_code": doc["exit_code"], "started": doc["started"],
           "ended": doc["ended"], "seed": doc["seed"] if isinstance(doc["seed"], int) else None,
           "defects": ", ".join(doc["defects"]), "indexed_at": utc_now_iso()}
    rows = []
    raw = {t.nodeid: t.measurements for t in summary.tests.values()}
    for t in doc["tests"]:
        for m, rec in zip(t["measurements"], raw.get(t["nodeid"], [])):
            c = rec.get("conditions") or {}
            cond = ", ".join(f"{k}={fmt_plain(c[k], 6) if isinstance(c[k], float) else c[k]}"
                             for k in KEY_CONDITIONS if k in c)
            rows.append({"run_id": run_id, "test": t["nodeid"], "name": m["name"],
                         "key": f"{t['nodeid']}::{m['name']}" + (f" [{cond}]" if cond else ""),
                         "value": m["value"], "unit": m["unit"], "low": m["limits"]["low"],
                         "high": m["limits"]["high"], "acc_low": m["acceptance"]["low"],
                         "acc_high": m["acceptance"]["high"], "u": m["uncertainty"]["U"],
                         "decision_rule": m["decision_rule"], "verdict": m["verdict"],
                         "requirement": m["requirement"], "margin": m["margin"]})
    return row, rows


def existing_db_url(db: str | None, run_dir: Path | str) -> str | None:
    """:func:`db_url` when that database exists (a URL is taken to exist), else None: the
    report's trend is drawn only from a database already there, never from a new empty one."""
    text = db or os.environ.get(DB_ENV)
    if text and "://" in text:
        return text
    path = Path(text).expanduser() if text else Path(run_dir).resolve().parent / DB_FILE
    return f"sqlite:///{path.resolve()}" if path.is_file() else None


def trend(db: "ResultsDB", run_dir: Path | str, n_runs: int = 8) -> dict | None:
    """The key measurements of a run (per requirement, the one with the smallest margin)
    over the last ``n_runs`` indexed runs of the same board profile started before it,
    oldest first, and this run. None when there are no earlier runs. Values in each
    measurement's unit; ``runs``: run_id, started, fw_version, verdict."""
    from sqlalchemy import select

    row, rows = run_rows(run_dir)
    key_rows: dict[str, dict] = {}
    for m in rows:
        req = m.get("requirement")
        if req and m.get("margin") is not None and (req not in key_rows or m["margin"] < key_rows[req]["margin"]):
            key_rows[req] = m
    r = db.runs.c
    q = (select(db.runs).where(r.board_profile == row["board_profile"], r.run_id != row["run_id"])
         .order_by(r.started.desc()).limit(int(n_runs)))
    if row.get("started"):
        q = q.where(r.started < row["started"])
    with db.engine.connect() as conn:
        runs = [dict(x._mapping) for x in conn.execute(q)][::-1]
        if not runs or not key_rows:
            return None
        mq = select(db.meas).where(db.meas.c.run_id.in_([x["run_id"] for x in runs]),
                                   db.meas.c.key.in_([m["key"] for m in key_rows.values()]))
        found = {(x.run_id, x.key): x.value for x in conn.execute(mq)}
    return {
        "runs": [{k: x[k] for k in ("run_id", "started", "fw_version", "verdict")} for x in runs],
        "rows": [{"requirement": req, "name": m["name"], "test": m["test"], "unit": m["unit"],
                  "limits": [m["low"], m["high"]], "values": [found.get((x["run_id"], m["key"])) for x in runs],
                  "current": m["value"], "verdict": m["verdict"]} for req, m in sorted(key_rows.items())],
    }


def load_trend(db: str | None, run_dir: Path | str, n_runs: int = 8) -> dict | None:
    """:func:`trend` from the results database if it exists (None otherwise)."""
    url = existing_db_url(db, run_dir)
    if url is None:
        return None
    rdb = ResultsDB.open(url)
    try:
        return trend(rdb, run_dir, n_runs)
    finally:
        rdb.close()


def compare(a: list[dict], b: list[dict]) -> list[dict]:
    """Per measurement key (A's order, then B's new ones): value A, value B, delta (B − A),
    unit, verdict A -> B, ``changed`` (measured in both, verdicts differ) and ``presence``
    (``both``, ``only A``, ``only B``)."""
    by_a = {m["key"]: m for m in a}
    by_b = {m["key"]: m for m in b}
    out = []
    for key in list(by_a) + [k for k in by_b if k not in by_a]:
        ma, mb = by_a.get(key), by_b.get(key)
        va, vb = (ma or {}).get("value"), (mb or {}).get("value")
        out.append({
            "key": key, "unit": (ma or mb)["unit"], "a": va, "b": vb,
            "delta": (vb - va) if va is not None and vb is not None else None,
            "verdict_a": (ma or {}).get("verdict"), "verdict_b": (mb or {}).get("verdict"),
            "changed": bool(ma and mb and ma.get("verdict") != mb.get("verdict")),
            "presence": "both" if ma and mb else ("only A" if ma else "only B"),
        })
    return out


def to_json(rows) -> str:
    """Rows as indented JSON (for ``--json``)."""
    return json.dumps(rows, indent=2, default=str)
