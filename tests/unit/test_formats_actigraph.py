"""The ``actigraph_csv`` import format: header block, both row layouts, device clock."""

from __future__ import annotations

from datetime import datetime

import pytest

from clarity.biometrics.formats import FormatError, OptionsError, get_format
from clarity.biometrics.streams import Sample, check_sample
from tests.support.formats import fixture, read_records, utc

HEADER = (
    "------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.3 Firmware v3.2.1 "
    "date format {date_format} at 30 Hz  Filter Normal -----------\n"
    "Serial Number: NEO1F00000000\n"
    "Start Time {time}\n"
    "Start Date {date}\n"
    "Epoch Period (hh:mm:ss) {epoch}\n"
    "Download Time 10:31:05\n"
    "Download Date 5/20/2014\n"
    "Current Memory Address: 0\n"
    "Current Battery Voltage: 4.07     Mode = 12\n"
    "--------------------------------------------------\n"
)


def header(
    date_format: str = "M/d/yyyy",
    time: str = "00:00:00",
    date: str = "5/7/2014",
    epoch: str = "00:01:00",
) -> str:
    return HEADER.format(date_format=date_format, time=time, date=date, epoch=epoch)


def rec(stream: str, ts: datetime, value: float, unit: str) -> dict[str, object]:
    return {"stream": stream, "ts": ts, "value": value, "unit": unit, "source": "actigraph"}


def test_column_rows_keep_the_device_clock_across_dst() -> None:
    """New York springs forward at 02:00 on 10 March 2024; the device clock does not."""
    records = read_records(
        "actigraph_csv", fixture("actigraph_columns.csv"), timezone="America/New_York"
    )
    assert records == [
        rec("activity_counts", utc(2024, 3, 10, 6, 58), 12, "{count}"),
        rec("steps", utc(2024, 3, 10, 6, 58), 0, "{steps}"),
        rec("light", utc(2024, 3, 10, 6, 58), 5, "lx"),
        rec("activity_counts", utc(2024, 3, 10, 6, 59), 250, "{count}"),
        rec("steps", utc(2024, 3, 10, 6, 59), 7, "{steps}"),
        rec("light", utc(2024, 3, 10, 6, 59), 120, "lx"),
        rec("activity_counts", utc(2024, 3, 10, 7, 0), 0, "{count}"),  # "02:00" EST
        rec("steps", utc(2024, 3, 10, 7, 0), 0, "{steps}"),
        rec("light", utc(2024, 3, 10, 7, 0), 0, "lx"),
        None,  # Axis1 is no number; the row's other cells still count
        rec("steps", utc(2024, 3, 10, 7, 1), 2, "{steps}"),
        rec("light", utc(2024, 3, 10, 7, 1), 0, "lx"),
        rec("activity_counts", utc(2024, 3, 31, 7, 2), 1, "{count}"),  # its own Date/Time
        rec("steps", utc(2024, 3, 31, 7, 2), 0, "{steps}"),
        rec("light", utc(2024, 3, 31, 7, 2), 0, "lx"),
        None,  # too few cells
    ]
    now = utc(2030, 1, 1)
    good = [r for r in records if r is not None]
    assert all(isinstance(check_sample(i, r, now), Sample) for i, r in enumerate(good))


def test_headerless_rows_are_consecutive_epochs_from_the_start() -> None:
    records = read_records(
        "actigraph_csv", fixture("actigraph_headerless.csv"), timezone="Europe/Oslo"
    )
    # Start 23/04/2024 10:00:00 CEST (dd/MM/yyyy), 30-second epochs; Axis1 only.
    assert records == [
        rec("activity_counts", utc(2024, 4, 23, 8, 0, 0), 40, "{count}"),
        rec("activity_counts", utc(2024, 4, 23, 8, 0, 30), 0, "{count}"),
        None,
        rec("activity_counts", utc(2024, 4, 23, 8, 1, 30), 1250, "{count}"),  # "1,250"
        rec("activity_counts", utc(2024, 4, 23, 8, 2, 0), 17, "{count}"),
    ]


def test_column_row_without_date_and_time_uses_epoch_numbers() -> None:
    data = header(date_format="yyyy-MM-dd", date="2014-05-07", epoch="00:00:10")
    data += "Axis1,Axis2,Axis3,Steps\n5,1,1,0\n7,1,1,1\n"
    records = read_records("actigraph_csv", data.encode(), timezone="UTC", source="gt3x")
    assert [(r["stream"], r["ts"], r["value"], r["source"]) for r in records if r] == [
        ("activity_counts", utc(2014, 5, 7), 5, "gt3x"),
        ("steps", utc(2014, 5, 7), 0, "gt3x"),
        ("activity_counts", utc(2014, 5, 7, 0, 0, 10), 7, "gt3x"),
        ("steps", utc(2014, 5, 7, 0, 0, 10), 1, "gt3x"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"timestamp,date,activity\n2004-01-01 12:00:00,x,4\n",
        (header(epoch="00:00:00") + "Accelerometer X,Accelerometer Y,Accelerometer Z\n").encode(),
        (header() + "Accelerometer X,Accelerometer Y,Accelerometer Z\n").encode(),
        (header() + "Date,Axis1\n").encode(),
        header(date_format="MMMM yyyy").encode(),
        header(date="31/31/2014").encode(),
        header().replace("-" * 50, "").encode(),
    ],
)
def test_wrong_kind_of_file_is_a_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        read_records("actigraph_csv", data, timezone="UTC")


def test_timezone_is_required() -> None:
    assert get_format("actigraph_csv").needs_timezone
    with pytest.raises(OptionsError):
        read_records("actigraph_csv", fixture("actigraph_headerless.csv"))
