"""Documents as PDF files: a template under templates/documents/ laid out by WeasyPrint with the
print stylesheet (static/css/documents.css).

WeasyPrint fetches whatever a page links to. Here it may read this application's own static
files from disk and nothing else: a document never reaches the network, whatever its HTML says
(a patient's name or a remark is text, but a template can be wrong)."""

import logging
import mimetypes
import posixpath
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.exceptions import SuspiciousFileOperation
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.http import content_disposition_header
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

logger = logging.getLogger("billing.pdf")

REFUSED = "Documents load only this application's static files; {url} was not loaded."


class FetchRefused(ValueError):
    """A document asked for something that is not one of our static files."""


class StaticFilesFetcher(URLFetcher):
    """WeasyPrint's fetcher, allowed only our static files under `base_url`'s STATIC_URL, read
    from disk through the staticfiles finders (or the collected files in production). Every
    other URL (another host, another scheme, a path outside the static files) is refused
    before anything is opened; `refused` lists them."""

    def __init__(self, base_url: str):
        super().__init__(allowed_protocols=())  # never urllib's handlers, whatever happens
        self.static_prefix = urljoin(base_url, settings.STATIC_URL)
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        path = self.static_file(url)
        if path is None:
            self.refused.append(url)
            logger.warning("Document asked for %s: refused.", url)
            raise FetchRefused(REFUSED.format(url=url))
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, body=path.read_bytes(),
                                  headers={"Content-Type": content_type})

    def static_file(self, url: str) -> Path | None:
        """The file on disk that `url` names among our static files, else None."""
        wanted, prefix = urlsplit(url), urlsplit(self.static_prefix)
        if (wanted.scheme, wanted.netloc) != (prefix.scheme, prefix.netloc):
            return None
        if not wanted.path.startswith(prefix.path):
            return None
        name = posixpath.normpath(unquote(wanted.path[len(prefix.path):]))
        if name.startswith(("/", "..")) or name == ".":
            return None
        found = finders.find(name)
        if found:
            return Path(found)
        try:  # collected files (hashed names in production)
            if staticfiles_storage.exists(name):
                return Path(staticfiles_storage.path(name))
        except (NotImplementedError, SuspiciousFileOperation):
            pass
        return None


def document_base_url(request) -> str:
    """The site's root as the request reached it: relative links in a document resolve here."""
    return request.build_absolute_uri("/")


def html_document(template_name: str, context: dict, *, base_url: str) -> HTML:
    """The template as WeasyPrint's HTML, rendered without a request (no context processors:
    a document shows what its view gives it)."""
    return HTML(string=render_to_string(template_name, context), base_url=base_url,
                url_fetcher=StaticFilesFetcher(base_url))


def pdf_response(document: HTML, *, filename: str) -> HttpResponse:
    """The document as a PDF download named `filename`."""
    response = HttpResponse(document.write_pdf(), content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
