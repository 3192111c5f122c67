"""The credit note as a PDF download: the same document as its printable page, for the same
people (another clinic's credit note is not found)."""

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from billing.pdf import document_base_url, html_document, pdf_response

from .selectors import credit_note_get_for_user

CREDIT_NOTE_TEMPLATE = "documents/credit_note.html"


def credit_note_document_context(note) -> dict:
    return {
        "note": note,
        "lines": note.lines.select_related("invoice_line"),
        "refunds": note.refunds.all(),
    }


@login_required
@require_GET
def credit_note_pdf(request, pk):
    note = credit_note_get_for_user(user=request.user, pk=pk)
    document = html_document(CREDIT_NOTE_TEMPLATE, credit_note_document_context(note),
                             base_url=document_base_url(request))
    return pdf_response(document, filename=f"{note.number}.pdf")
