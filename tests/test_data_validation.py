"""Bad input gets a clear error naming the file, the rows, the column and the fix."""

from __future__ import annotations

import pandas as pd
import pytest

from salesops_models.data import load_crm_export
from salesops_models.data.schema import OPPORTUNITIES
from salesops_models.errors import DataValidationError, MappingError


def _opps(**overrides):
    df = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3"],
            "rep_id": ["R1", "R1", "R2"],
            "stage": ["Won", "Lost", "Open"],
            "status": ["won", "lost", "open"],
            "created_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
            "close_date": ["2024-02-01", "2024-03-01", ""],
            "amount": ["1000", "0", "500"],
        }
    )
    for k, v in overrides.items():
        df[k] = v
    return df


def test_valid_table_is_coerced_to_canonical_dtypes():
    out = OPPORTUNITIES.validate(_opps(), "opps.csv")
    assert out["amount"].dtype == "float64"
    assert str(out["created_date"].dtype) == "datetime64[ns]"
    assert pd.isna(out.loc[2, "close_date"])
    assert "segment" in out.columns  # optional columns are added


def test_missing_column_names_file_and_column():
    with pytest.raises(DataValidationError) as e:
        OPPORTUNITIES.validate(_opps().drop(columns=["rep_id"]), "export/opps.csv")
    msg = str(e.value)
    assert "export/opps.csv" in msg and "rep_id" in msg and "mapping" in msg


def test_all_problems_reported_at_once_with_rows():
    bad = _opps(amount=["-5", "0", "abc"], created_date=["2024-01-01", "31/31/2024", "2024-03-01"])
    bad.loc[1, "opportunity_id"] = "O1"
    with pytest.raises(DataValidationError) as e:
        OPPORTUNITIES.validate(bad, "opps.csv")
    err = e.value
    text = str(err)
    assert len(err.problems) >= 4
    assert "below 0" in text and "row 2" in text  # negative amount, data row 1 is file line 2
    assert "not a number" in text and "'abc'" in text
    assert "unparseable dates" in text and "31/31/2024" in text
    assert "duplicate ids ['O1']" in text


def test_close_before_create_is_rejected():
    bad = _opps(close_date=["2023-12-01", "2024-03-01", ""])
    with pytest.raises(DataValidationError, match="close_date before created_date"):
        OPPORTUNITIES.validate(bad, "opps.csv")


def _write_export(tmp_path, pipeline_rows):
    (tmp_path / "opps.csv").write_text(pipeline_rows)
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "stages: {open: [Open, Proposal], won: Closed Won, lost: Closed Lost}\n"
        "as_of: max\n"
        "tables:\n"
        "  opportunities:\n"
        "    file: opps.csv\n"
        "    columns: {opportunity_id: Id, rep_id: Owner, stage: Stage, created_date: Created,"
        " close_date: Closed, amount: Amount}\n"
    )
    return mapping


def test_custom_mapping_loads_and_derives_reps(tmp_path):
    mapping = _write_export(
        tmp_path,
        "Id,Owner,Stage,Created,Closed,Amount\n"
        "1,ann,Closed Won,2024-01-01,2024-02-01,100\n"
        "2,bob,Closed Lost,2024-01-05,2024-01-20,0\n"
        "3,bob,Proposal,2024-02-01,,250\n",
    )
    c = load_crm_export(tmp_path, mapping)
    assert list(c.reps["rep_id"]) == ["ann", "bob"]
    assert list(c.opportunities["status"]) == ["won", "lost", "open"]
    assert c.as_of == pd.Timestamp("2024-02-01")
    assert c.bookings["amount"].sum() == 100


def test_unknown_stage_names_the_labels_and_the_mapping(tmp_path):
    mapping = _write_export(
        tmp_path,
        "Id,Owner,Stage,Created,Closed,Amount\n1,ann,Closed Won,2024-01-01,2024-02-01,100\n"
        "2,ann,Negotiation,2024-01-01,,5\n",
    )
    with pytest.raises(DataValidationError) as e:
        load_crm_export(tmp_path, mapping)
    text = str(e.value)
    assert "opps.csv" in text and "Negotiation" in text and "rows [3]" in text and "map.yaml" in text


def test_mapping_naming_a_column_the_file_lacks(tmp_path):
    mapping = _write_export(
        tmp_path, "Id,Owner,Stage,Created,Closed\n1,ann,Closed Won,2024-01-01,2024-02-01\n"
    )
    with pytest.raises(DataValidationError, match=r"\['Amount'\].*map.yaml"):
        load_crm_export(tmp_path, mapping)


def test_mapping_with_a_non_canonical_target(tmp_path):
    (tmp_path / "map.yaml").write_text(
        "stages: {open: [A]}\ntables:\n  opportunities: {file: x.csv, columns: {deal_value: Amount}}\n"
    )
    with pytest.raises(MappingError, match="deal_value.*not canonical"):
        load_crm_export(tmp_path, tmp_path / "map.yaml")


def test_mapping_is_data_not_code(tmp_path):
    (tmp_path / "map.yaml").write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_crm_export(tmp_path, tmp_path / "map.yaml")
