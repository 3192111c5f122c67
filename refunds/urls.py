from django.urls import path

from . import documents, views

app_name = "refunds"

urlpatterns = [
    path("invoices/<int:pk>/refund/", views.credit_note_create_view, name="credit_note_create"),
    path("invoices/<int:pk>/cancel/", views.invoice_cancel_view, name="invoice_cancel"),
    path("invoices/cancelled/", views.cancelled_register, name="cancelled_register"),
    path("credit-notes/", views.credit_note_list, name="credit_note_list"),
    path("credit-notes/<int:pk>/", views.credit_note_detail, name="credit_note_detail"),
    path("credit-notes/<int:pk>/pdf/", documents.credit_note_pdf, name="credit_note_pdf"),
    path("refunds/<int:pk>/paid-out/", views.refund_paid_out, name="refund_paid_out"),
    path("refunds/<int:pk>/retry/", views.refund_retry_view, name="refund_retry"),
]
