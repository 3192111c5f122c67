"""One file a mutation. Each calls the same service as the screens and returns its objects and
`errors`: plain sentences, empty on success; on failure nothing was changed."""
