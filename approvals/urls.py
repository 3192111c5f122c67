from django.urls import path

from . import views

app_name = "approvals"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("bulk/", views.bulk_decide, name="bulk_decide"),
    path("export.csv", views.queue_csv, name="queue_csv"),
    path("<int:pk>/", views.request_detail, name="request_detail"),
    path("<int:pk>/approve/", views.request_approve_view, name="request_approve"),
    path("<int:pk>/reject/", views.request_reject_view, name="request_reject"),
    path("<int:pk>/withdraw/", views.request_withdraw_view, name="request_withdraw"),
    path("invoices/<int:invoice_pk>/refund-request/", views.refund_request_create_view,
         name="refund_request_create"),
    path("invoices/<int:invoice_pk>/cancellation-request/",
         views.cancellation_request_create_view, name="cancellation_request_create"),
]
