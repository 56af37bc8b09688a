"""Bad input gets a clear error naming the file, the rows, the column and the fix."""

from __future__ import annotations

import pandas as pd
import pytest

from salesops_models.data import load_crm_export
from salesops_models.data.schema import OPPORTUNITIES
from salesops_models.errors import DataValidationError, InputFileError, MappingError


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
    assert "below 0" in text and "row 1" in text  # a DataFrame has no file lines: 1-based positions
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
    assert "opps.csv" in text and "Negotiation" in text and "line 3" in text and "map.yaml" in text


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


# ---- issue 18: file lines, one date format, every problem, the path rule, unreadable files ----------


def _export(tmp_path, rows, header="Id,Owner,Stage,Created,Closed,Amount", extra_mapping=""):
    (tmp_path / "opps.csv").write_text(header + "\n" + "".join(r + "\n" for r in rows))
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "stages: {open: [Open, Proposal], won: Closed Won, lost: Closed Lost}\n"
        "as_of: max\n" + extra_mapping + "tables:\n"
        "  opportunities:\n"
        "    file: opps.csv\n"
        "    columns: {opportunity_id: Id, rep_id: Owner, stage: Stage, created_date: Created,"
        " close_date: Closed, amount: Amount}\n"
    )
    return mapping


def _good_rows(n):
    return [f"{i},ann,Closed Won,2024-01-01,2024-02-01,100" for i in range(1, n + 1)]


def _problems(tmp_path, mapping):
    with pytest.raises(DataValidationError) as e:
        load_crm_export(tmp_path, mapping)
    return str(e.value)


def test_errors_name_file_lines_when_bad_rows_are_unevenly_spaced(tmp_path):
    rows = _good_rows(40)
    for line in (4, 8, 30):  # file line = data row + 1 (the header is line 1)
        rows[line - 2] = rows[line - 2].rsplit(",", 1)[0] + ",-5"
    text = _problems(tmp_path, _export(tmp_path, rows))
    assert "values below 0 at lines 4, 8, 30" in text, text


def test_duplicate_ids_name_their_file_lines(tmp_path):
    rows = _good_rows(30)
    for line in (9, 10, 25):
        rows[line - 2] = "1" + rows[line - 2][rows[line - 2].index(",") :]
    text = _problems(tmp_path, _export(tmp_path, rows))
    assert "duplicate ids ['1'] at lines 2, 9, 10, 25" in text, text


def test_line_numbers_count_quoted_newlines_and_blank_lines(tmp_path):
    rows = [
        '1,"ann\nsmith",Closed Won,2024-01-01,2024-02-01,100',  # lines 2-3
        "",  # line 4, skipped
        "2,bob,Closed Won,2024-01-01,2024-02-01,-1",  # line 5
    ]
    text = _problems(tmp_path, _export(tmp_path, rows))
    assert "values below 0 at line 5" in text, text


def test_every_problem_of_a_crm_file_is_listed_with_the_unknown_stage(tmp_path):
    rows = _good_rows(6)
    rows[0] = "1,ann,Negotiation,2024-01-01,,5"  # line 2: unknown stage
    rows[2] = "3,ann,Closed Won,2024-01-01,2024-02-01,-7"  # line 4: negative amount
    rows[3] = "3,ann,Closed Won,2024-01-01,2024-02-01,100"  # line 5: duplicate id
    rows[4] = "5,ann,Closed Won,2024-03-01,2024-02-01,100"  # line 6: close before create
    text = _problems(tmp_path, _export(tmp_path, rows))
    assert "unknown stage label(s) ['Negotiation'] at line 2" in text
    assert "values below 0 at line 4" in text
    assert "duplicate ids ['3'] at lines 4, 5" in text
    assert "close_date before created_date at line 6" in text


def test_dd_mm_dates_are_not_parsed_value_by_value(tmp_path):
    rows = [
        f"{i},ann,Closed Won,{d:02d}/0{m}/2024,{d:02d}/0{m + 1}/2024,100"
        for i, (d, m) in enumerate([(3, 1), (15, 2), (28, 3), (5, 4)], 1)
    ]
    text = _problems(tmp_path, _export(tmp_path, rows))
    assert "close_date before created_date" not in text
    assert "not ISO 8601" in text and "date_format: '%d/%m/%Y'" in text
    c = load_crm_export(tmp_path, _export(tmp_path, rows, extra_mapping="date_format: '%d/%m/%Y'\n"))
    assert list(c.opportunities["created_date"].dt.strftime("%Y-%m-%d")) == [
        "2024-01-03",
        "2024-02-15",
        "2024-03-28",
        "2024-04-05",
    ]


def test_ambiguous_and_mixed_date_columns_are_rejected(tmp_path):
    ambiguous = [f"{i},ann,Closed Won,0{i}/02/2024,0{i}/03/2024,1" for i in range(1, 4)]
    text = _problems(tmp_path, _export(tmp_path, ambiguous))
    assert "DD/MM/YYYY or MM/DD/YYYY" in text
    mixed = ["1,ann,Closed Won,2024-01-03,2024-02-01,1", "2,ann,Closed Won,15/01/2024,2024-02-01,1"]
    text = _problems(tmp_path, _export(tmp_path, mixed))
    assert "mixed date formats" in text and "line 3" in text


def test_header_only_export_is_an_error(tmp_path):
    text = _problems(tmp_path, _export(tmp_path, []))
    assert "opps.csv" in text and "only its header line" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"Id,Owner,Stage,Created,Closed,Amount\n1,J\xfcrgen,Closed Won,2024-01-01,2024-02-01,1\n", "line 2: byte"),
    ],
)
def test_empty_and_non_utf8_csv_files_are_one_line_errors(tmp_path, content, message):
    mapping = _export(tmp_path, [])
    (tmp_path / "opps.csv").write_bytes(content)
    with pytest.raises(InputFileError) as e:
        load_crm_export(tmp_path, mapping)
    assert "opps.csv" in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_a_csv_in_another_encoding_loads_when_the_mapping_names_it(tmp_path):
    mapping = _export(tmp_path, [])
    (tmp_path / "opps.csv").write_bytes(
        b"Id,Owner,Stage,Created,Closed,Amount\n1,J\xfcrgen,Closed Won,2024-01-01,2024-02-01,1\n"
    )
    mapping.write_text(mapping.read_text() + "    encoding: cp1252\n")
    assert list(load_crm_export(tmp_path, mapping).reps["rep_id"]) == ["Jürgen"]


def test_as_of_that_is_not_a_date_names_the_mapping(tmp_path):
    mapping = _export(tmp_path, _good_rows(2))
    mapping.write_text(mapping.read_text().replace("as_of: max", "as_of: end of year"))
    with pytest.raises(MappingError, match="map.yaml: as_of 'end of year' is not a date"):
        load_crm_export(tmp_path, mapping)


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_table_files_outside_the_export_folder_are_refused(tmp_path, how):
    export = tmp_path / "export"
    export.mkdir()
    secret = tmp_path / "secret.csv"
    secret.write_text("private,header\n1,2\n")
    ref = {"dotdot": "../secret.csv", "absolute": str(secret), "symlink": "link.csv"}[how]
    if how == "symlink":
        (export / "link.csv").symlink_to(secret)
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "stages: {open: [A]}\ntables:\n  opportunities:\n"
        f"    file: '{ref}'\n    columns: {{opportunity_id: Id, rep_id: Owner, stage: Stage}}\n"
    )
    with pytest.raises(MappingError) as e:
        load_crm_export(export, mapping)
    msg = str(e.value)
    assert "outside the export folder" in msg and "--allow-dir" in msg and "Rule:" in msg
    assert "private" not in msg, "the foreign file must not be read"
    with pytest.raises(DataValidationError, match="private, header"):  # allowed: read, columns differ
        load_crm_export(export, mapping, allow_dirs=[tmp_path])
