"""The on-disk format: a lossless round trip, a schema version that is enforced, and validation."""

from __future__ import annotations

import json
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drills.history import SCHEMA_VERSION, HistoryError, check, read_history, write_history
from drills.history.columns import Vocabulary
from drills.history.model import TABLES, History
from tests.unit.history.scenario import REPLICATED, STANDBY
from tests.unit.history.test_continuity import marked_scenario


def full_history() -> History:
    s, recs, standby = marked_scenario(groups=("a",))
    s.produce("k", at=99.0, acked=False, lands=False)
    s.b.resume("a", cluster=STANDBY, topic=REPLICATED, partition=0, source="checkpoint", position=1)
    s.consume("a", recs[1], at=108.0, cluster=STANDBY, topic=REPLICATED, offset=standby[1])
    return s.history()


def test_round_trip_keeps_every_row_and_the_metadata(tmp_path):
    history = full_history()
    assert all(getattr(history, name).num_rows for name in TABLES)
    back = read_history(write_history(history, tmp_path / "history"))
    assert back.meta == history.meta
    for name in TABLES:
        assert getattr(back, name).equals(getattr(history, name)), name
    assert check(back).to_dict(full=True) == check(history).to_dict(full=True)


def test_every_file_carries_the_schema_version(tmp_path):
    write_history(full_history(), tmp_path)
    for name in TABLES:
        metadata = pq.read_schema(tmp_path / f"{name}.parquet").metadata
        assert metadata[b"kdrill.history.schema_version"] == str(SCHEMA_VERSION).encode()
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert (meta["format"], meta["schema_version"]) == ("kdrill-history", SCHEMA_VERSION)


def test_an_unknown_schema_version_is_refused(tmp_path):
    write_history(full_history(), tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(HistoryError, match="schema version"):
        read_history(tmp_path)


def test_a_table_from_another_version_is_refused(tmp_path):
    write_history(full_history(), tmp_path)
    table = pq.read_table(tmp_path / "reads.parquet")
    pq.write_table(table.replace_schema_metadata(None), tmp_path / "reads.parquet")
    with pytest.raises(HistoryError, match="reads.parquet"):
        read_history(tmp_path)


def test_missing_directory_or_table_is_refused(tmp_path):
    with pytest.raises(HistoryError, match="no meta.json"):
        read_history(tmp_path)
    write_history(full_history(), tmp_path)
    (tmp_path / "log.parquet").unlink()
    with pytest.raises(HistoryError, match="missing log.parquet"):
        read_history(tmp_path)


def test_tables_are_conformed_or_rejected_with_the_column_named():
    history = full_history()
    with pytest.raises(HistoryError, match="writes: missing columns \\['ack_time'\\]"):
        History(meta=history.meta, writes=history.writes.drop_columns(["ack_time"]))
    nulls = history.reads.set_column(
        history.reads.schema.get_field_index("offset"),
        "offset",
        pa.nulls(history.reads.num_rows, pa.int64()),
    )
    with pytest.raises(HistoryError, match="reads.offset"):
        History(meta=history.meta, reads=nulls)


def test_a_reused_identity_is_rejected():
    history = full_history()
    twice = pa.concat_tables([history.writes, history.writes.slice(0, 1)])
    with pytest.raises(HistoryError, match="reused"):
        History(meta=history.meta, writes=twice)


def test_a_history_read_back_keeps_strings_encoded_and_gives_plain_tables(tmp_path):
    history = full_history()
    back = read_history(write_history(history, tmp_path))
    assert pa.types.is_dictionary(back.stored("writes").schema.field("producer").type)
    for name in TABLES:
        assert getattr(back, name).schema == TABLES[name], name
    assert back == history
    assert pickle.loads(pickle.dumps(back)) == history
    assert back.with_meta(drill_id="other").meta.drill_id == "other"


def test_codes_follow_first_appearance_whatever_the_chunks_dictionaries():
    first = pa.array(["b", "a", "b"]).dictionary_encode()
    second = pa.DictionaryArray.from_arrays(pa.array([1, 0, 2], pa.int32()), ["c", "a", "d"])
    vocabulary = Vocabulary()
    codes = vocabulary.encode(pa.chunked_array([first, second]))
    assert vocabulary.values == ["b", "a", "c", "d"]
    assert codes.tolist() == [0, 1, 0, 1, 2, 3]
    assert vocabulary.encode(pa.array(["d", None, "e"])).tolist() == [3, -1, 4]
