from django.urls import path

from . import documents, invoicing, patients, views

app_name = "desk"

urlpatterns = [
    path("invoices/", views.invoice_list, name="invoice_list"),
    path("invoices/new/", invoicing.invoice_new, name="invoice_new"),
    path("invoices/<int:pk>/", views.invoice_detail, name="invoice_detail"),
    path("invoices/<int:pk>/pdf/", documents.invoice_pdf, name="invoice_pdf"),
    path("invoices/<int:pk>/actions/", views.invoice_actions_menu, name="invoice_actions"),
    path("invoices/<int:pk>/issue/", invoicing.invoice_issue_view, name="invoice_issue"),
    path("patients/", patients.patient_list, name="patient_list"),
    path("patients/<int:pk>/", patients.patient_detail, name="patient_detail"),
]
