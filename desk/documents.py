"""The invoice as a PDF download, for the members of its clinic. A draft has no number yet: its
file is draft-<id>.pdf and the document says DRAFT on every page."""

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from billing.models import Invoice, InvoiceStatus
from billing.pdf import document_base_url, html_document, pdf_response
from billing.selectors import invoice_get_for_user
from refunds.selectors import credit_notes_for_invoice, line_credit_summary

INVOICE_TEMPLATE = "documents/invoice.html"


def invoice_filename(invoice: Invoice) -> str:
    return f"{invoice.number}.pdf" if invoice.number else f"draft-{invoice.pk}.pdf"


def invoice_document_context(invoice: Invoice) -> dict:
    credits = line_credit_summary(invoice=invoice)
    lines = list(invoice.lines.all())
    for line in lines:
        line.credit_summary = credits.get(line.pk, [])
    return {
        "invoice": invoice,
        "is_draft": invoice.status == InvoiceStatus.DRAFT,
        "is_cancelled": invoice.status == InvoiceStatus.CANCELLED,
        "lines": lines,
        "payments": invoice.payments.select_related("method").order_by("received_at", "pk"),
        "credit_notes": credit_notes_for_invoice(invoice=invoice),
    }


@login_required
@require_GET
def invoice_pdf(request, pk):
    invoice = invoice_get_for_user(user=request.user, pk=pk)
    document = html_document(INVOICE_TEMPLATE, invoice_document_context(invoice),
                             base_url=document_base_url(request))
    return pdf_response(document, filename=invoice_filename(invoice))
