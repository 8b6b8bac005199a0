"""Project exceptions. Each message names the bad value and says how to fix it.

The CLI prints any :class:`EdgeMnv2Error` on one line and exits non-zero; anything else is a bug.
"""


class EdgeMnv2Error(Exception):
    """Base class for every error a user can cause and fix."""


class UnknownModelError(EdgeMnv2Error):
    """A model name that is not in the registry."""


class InvalidModelSpecError(EdgeMnv2Error):
    """A width multiplier, resolution or class count that cannot make a model."""


class CheckpointError(EdgeMnv2Error):
    """A checkpoint that cannot be read or does not fit the model."""


class UnknownTargetError(EdgeMnv2Error):
    """A target name with no file in ``targets/``, or a malformed target file."""


class ModelFileError(EdgeMnv2Error):
    """A model file that is missing, unreadable, or not valid ONNX."""


class ExportCheckError(EdgeMnv2Error):
    """The exported ONNX model does not compute what the PyTorch model computes."""


class CompileError(EdgeMnv2Error):
    """TVM could not import or build the model for the target."""


class ArtifactError(EdgeMnv2Error):
    """A compiled artifact that is missing, incomplete, or altered since it was built."""


class DeviceError(EdgeMnv2Error):
    """A device (RPC server, tracker) that cannot be reached or failed during a step."""


class DeviceTimeoutError(DeviceError):
    """A device step that did not finish in its time limit."""


class BoardConfigError(UnknownTargetError):
    """A microcontroller target file whose [micro] or [flash] tables are missing or wrong."""


class FirmwareBuildError(EdgeMnv2Error):
    """The firmware could not be built (toolchain missing, compile or link failure)."""


class FirmwareTooLargeError(FirmwareBuildError):
    """The firmware does not fit the board's flash or RAM. ``needs`` and ``available``: bytes by region
    (``flash``, ``ram``) where known, so a sweep can report the figures."""

    def __init__(self, message: str, needs: dict | None = None, available: dict | None = None):
        super().__init__(message)
        self.needs = needs or {}
        self.available = available or {}


class SerialProtocolError(DeviceError):
    """The serial link carried no valid answer: corrupt frames, wrong protocol version, no reply."""


class DeviceReportedError(DeviceError):
    """The device answered with an ERROR frame (bad request, model failure, fault)."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


class FlashError(DeviceError):
    """Firmware could not be put on the board (flasher missing or failed, emulator failed)."""


class EmulatorError(FlashError):
    """The emulated board (qemu-system-arm) could not start or died."""
