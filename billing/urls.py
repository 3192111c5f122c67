from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("invoices/<int:pk>/payments/new/", views.payment_create, name="payment_create"),
    path("invoices/<int:pk>/discard/", views.invoice_discard_view, name="invoice_discard"),
]
