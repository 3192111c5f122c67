from django.urls import path

from . import views

app_name = "refunds"

urlpatterns = [
    path("refunds/<int:pk>/paid-out/", views.refund_paid_out, name="refund_paid_out"),
    path("refunds/<int:pk>/retry/", views.refund_retry_view, name="refund_retry"),
]
