"""Error types whose message is the whole story: the plugin shows them without a traceback."""


class DeployError(Exception):
    """A user-facing problem (bad spec, missing file, unusable artifact)."""


class SpecError(DeployError):
    """The deploy spec itself is wrong: names the file and the dotted key."""

    def __init__(self, spec_file, key, message):
        self.spec_file = str(spec_file)
        self.key = key
        where = f"{self.spec_file}: {key}: " if key else f"{self.spec_file}: "
        super().__init__(where + message)


class ArtifactError(DeployError):
    """A checkpoint, ONNX file or engine exists but cannot be used."""


class BackendUnavailable(DeployError):
    """The backend's runtime is not installed or has no usable device here (tests skip with this reason)."""


class InferenceError(DeployError):
    """A backend raised while running a sample: names the backend, the case and the input shapes."""
