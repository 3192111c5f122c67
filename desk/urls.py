from django.urls import path

from . import documents, views

app_name = "desk"

urlpatterns = [
    path("invoices/", views.invoice_list, name="invoice_list"),
    path("invoices/<int:pk>/", views.invoice_detail, name="invoice_detail"),
    path("invoices/<int:pk>/pdf/", documents.invoice_pdf, name="invoice_pdf"),
    path("invoices/<int:pk>/actions/", views.invoice_actions_menu, name="invoice_actions"),
]
