"""Faults inside an API operation: the error a client sees is one plain sentence (retry or not),
never the driver's or Python's text, which is logged in full. The view turns a request that met
one into HTTP 503 (retryable) or 500, and an Idempotency-Key never keeps such an outcome."""

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from billing.faults import fault_message, fault_status, log_fault


def _ours(error: GraphQLError) -> bool:
    """An error raised by our code or the database, not a GraphQL or permission message."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class FaultMasking(MaskErrors):
    def __init__(self):
        super().__init__(should_mask_error=_ours)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        request = self.execution_context.context.request
        log_fault(original, request_id=getattr(request, "request_id", None))
        # A bug (500) outweighs a temporary fault (503): retrying would meet the bug again.
        status = fault_status(original)
        earlier = getattr(request, "api_fault_status", None)
        request.api_fault_status = 500 if 500 in (status, earlier) else status
        return GraphQLError(message=fault_message(original), nodes=error.nodes,
                            source=error.source, positions=error.positions, path=error.path)
