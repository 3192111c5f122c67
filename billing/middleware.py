class NoStoreMiddleware:
    """Every page and API answer carries patients' money: no browser or proxy keeps a copy
    (Cache-Control: no-store). Static files are served before this and stay cacheable."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["Cache-Control"] = "no-store"
        return response
