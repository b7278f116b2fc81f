"""Read → validate → map ids → split in time: the first stage of every segrec job."""

from segrec.data.config import DataConfig, SplitConfig, TableConfig
from segrec.data.ids import UNKNOWN, IdMap
from segrec.data.load import RetailData, TableReport, load_data
from segrec.data.read import DataFileError
from segrec.data.split import COLD, NEW, REPEAT, WARM, TimeSplit, label_period, split_by_time
from segrec.data.validate import DataValidationError

__all__ = [
    "COLD",
    "NEW",
    "REPEAT",
    "UNKNOWN",
    "WARM",
    "DataConfig",
    "DataFileError",
    "DataValidationError",
    "IdMap",
    "RetailData",
    "SplitConfig",
    "TableConfig",
    "TableReport",
    "TimeSplit",
    "label_period",
    "load_data",
    "split_by_time",
]
