from django.contrib import admin
from django.utils.html import format_html_join

from audit.models import AuditEvent
from billing.admin import ClinicAdmin
from billing.models import Clinic

from .models import ApprovalRule, FinancialRequest, FinancialRequestLine


class ApprovalRuleInline(admin.TabularInline):
    """A clinic's approval rules, for refunds and credits and for cancellations: tried in
    order of position, the first that matches a credit note's total and reason decides how
    many approvers it needs."""

    model = ApprovalRule
    extra = 0
    fields = ["kind", "position", "amount_from", "amount_up_to", "reasons", "approvers"]
    filter_horizontal = ["reasons"]
    ordering = ["kind", "position"]
    verbose_name_plural = (
        "Approval rules: per kind, tried in order of position; the first whose amount range "
        "(the credit note's total, both ends included) and reasons match decides. An action no "
        "rule matches needs one approver.")


admin.site.unregister(Clinic)


@admin.register(Clinic)
class ClinicWithApprovalRulesAdmin(ClinicAdmin):
    inlines = [*ClinicAdmin.inlines, ApprovalRuleInline]


@admin.register(ApprovalRule)
class ApprovalRuleAdmin(admin.ModelAdmin):
    list_display = ["clinic", "kind", "position", "amount_from", "amount_up_to", "approvers"]
    list_filter = ["clinic", "kind", "approvers"]
    list_select_related = ["clinic"]
    ordering = ["clinic", "kind", "position"]
    filter_horizontal = ["reasons"]


class FinancialRequestLineInline(admin.TabularInline):
    model = FinancialRequestLine
    extra = 0
    can_delete = False
    fields = ["invoice_line", "amount"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(FinancialRequest)
class FinancialRequestAdmin(admin.ModelAdmin):
    """Requests are submitted and decided on the Financial Approval screen; here they are read,
    with their history."""

    list_display = ["pk", "kind", "status", "clinic", "invoice", "requested_by", "requested_at",
                    "decided_by", "decided_at"]
    list_filter = ["kind", "status", "clinic"]
    search_fields = ["invoice__number", "remarks", "decision_remarks",
                     "requested_by__username", "decided_by__username"]
    date_hierarchy = "requested_at"
    list_select_related = ["clinic", "invoice", "requested_by", "decided_by"]
    inlines = [FinancialRequestLineInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in FinancialRequest._meta.fields] + ["history"]

    @admin.display(description="History")
    def history(self, obj):
        events = AuditEvent.objects.filter(
            content_type__app_label="approvals", content_type__model="financialrequest",
            object_id=str(obj.pk)).order_by("occurred_at", "pk")
        return format_html_join(
            "\n", "<div>{} — {} by {}{}</div>",
            ((e.occurred_at.strftime("%Y-%m-%d %H:%M UTC"), e.action,
              e.actor_username or "system", f": “{e.remarks}”" if e.remarks else "")
             for e in events),
        ) or "—"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
