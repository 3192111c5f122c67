"""Invoice Cancellation Request in the approval clinic, as the clinic's manual describes it: the
clerk asks, the approver rejects (nothing changes), the clerk asks again, the approver approves
and the clerk cancels the invoice, which then appears in the cancelled register."""

import re

from playwright.sync_api import expect

from approvals.models import FinancialRequest
from billing.models import InvoiceStatus

from .helpers import demo_invoice


def request_cancellation(clerk, invoice, remarks: str) -> None:
    page = clerk.page
    clerk.goto(f"/billing/invoices/{invoice.pk}/")
    page.get_by_role("button", name="More Action").click()
    page.get_by_role("link", name="Invoice Cancellation Request").click()
    expect(page.get_by_role("heading", name="Invoice Cancellation Request")).to_be_visible()
    page.get_by_label("Remarks (required)").fill(remarks)
    page.get_by_role("button", name="SAVE").click()
    expect(page.get_by_role("alert").first).to_contain_text("submitted")


def open_request_from_queue(approver, invoice):
    page = approver.page
    approver.goto("/")
    page.get_by_role("link", name=re.compile(r"^Financial Approval")).click()
    page.get_by_label("Invoice number").fill(invoice.number)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=re.compile(r"^Requested")).click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name=re.compile(r"^#")).click()
    expect(page.get_by_role("heading", name=re.compile("Invoice Cancellation Request"))
           ).to_be_visible()


def test_cancellation_request_rejected_then_approved_and_carried_out(demo, open_session):
    invoice = demo_invoice("MUSCAT", ["GP-CONS", "CBC"])
    clerk = open_session().login("clerk")
    approver = open_session().login("approver")

    # Rejected: the invoice is unchanged and can be asked about again.
    request_cancellation(clerk, invoice, "Patient was registered twice for the same visit.")
    open_request_from_queue(approver, invoice)
    approver.page.get_by_label("Why is it rejected?").fill("Not a duplicate: two visits.")
    approver.page.get_by_role("button", name="Reject").click()
    expect(approver.page.get_by_role("alert").first).to_contain_text("rejected")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED
    assert invoice.credit_notes.count() == 0
    approver.screenshot("rejected")

    # Asked again and approved: the clerk carries it out from the invoice page.
    request_cancellation(clerk, invoice, "Confirmed with the front desk: duplicate visit.")
    open_request_from_queue(approver, invoice)
    approver.page.get_by_role("button", name="Approve").click()
    expect(approver.page.get_by_role("alert").first).to_contain_text("approved")

    page = clerk.page
    clerk.goto(f"/billing/invoices/{invoice.pk}/")
    expect(page.get_by_role("status").filter(has_text="approved")).to_be_visible()
    page.get_by_role("button", name="More Action").click()
    page.get_by_role("link", name="Cancel Invoice").click()
    page.get_by_label("Why is the invoice cancelled?").fill("Duplicate visit, approved.")
    page.get_by_role("button", name="Cancel invoice").click()
    expect(page.get_by_role("alert").first).to_contain_text("cancelled")

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.CANCELLED
    assert FinancialRequest.objects.filter(invoice=invoice, status="completed").count() == 1
    clerk.goto("/billing/invoices/cancelled/")
    expect(page.get_by_role("link", name=invoice.number)).to_be_visible()
    clerk.screenshot("cancelled-register")


def test_an_approver_cannot_approve_their_own_request(demo, open_session):
    """The billing administrator may both submit and approve, but never their own request."""
    invoice = demo_invoice("MUSCAT", ["FOLLOW"])
    approver = open_session().login("admin")
    request_cancellation(approver, invoice, "Booked in error at the front desk.")

    open_request_from_queue(approver, invoice)
    page = approver.page
    expect(page.get_by_text("You submitted this request, so another approver must decide it.")
           ).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    approver.screenshot("own-request")

    # A forged approval is refused with the plain reason, and nothing changes.
    request = FinancialRequest.objects.get(invoice=invoice)
    response = page.request.post(approver.url(f"/approvals/{request.pk}/approve/"), form={
        "csrfmiddlewaretoken": page.locator("input[name=csrfmiddlewaretoken]").first
        .get_attribute("value")}, headers={"Referer": approver.url(f"/approvals/{request.pk}/")})
    assert response.status in (200, 302, 403)
    request.refresh_from_db()
    assert request.status == "requested"
