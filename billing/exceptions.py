class BusinessRuleError(Exception):
    """A refusal staff can act on. The message is a plain sentence shown as it is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
