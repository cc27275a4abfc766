"""`ExportConfig`: the settings of an export, one field per `smsguard export` flag."""

from __future__ import annotations

from dataclasses import dataclass

from smsguard.runtime import ConfigError


@dataclass(frozen=True)
class ExportConfig:
    """Every field is a `smsguard export` flag."""

    data: tuple[str, ...] = ()  # the run's data files, if they have moved since training or are CSV files of one's own (found by their hash)
    opset: int = 17  # ONNX opset; 17 is the oldest with every op used, and ONNX Runtime >= 1.13 runs it
    calibration_messages: int = 300  # training messages that calibrate the full-integer model
    golden_messages: int = 64  # test messages a device replays to check itself (`smsguard verify`)
    serial: int | None = None  # the bundle's serial, which a device never goes back below; default: the export time, seconds since 1970 UTC
    sign_key: str | None = None  # sign the manifest with this Ed25519 private key (`smsguard keygen`); needs smsguard[sign]

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", (self.data,) if isinstance(self.data, str) else tuple(self.data or ()))
        if self.opset < 17:
            msg = f"opset must be 17 or later, found {self.opset}"
            raise ConfigError(msg)
        if self.serial is not None and self.serial < 0:
            msg = f"serial must be 0 or more, found {self.serial}"
            raise ConfigError(msg)
        for name in ("calibration_messages", "golden_messages"):
            if getattr(self, name) < 1:
                msg = f"{name} must be at least 1, found {getattr(self, name)}"
                raise ConfigError(msg)
