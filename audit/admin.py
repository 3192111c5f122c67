from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "actor_username", "clinic", "action", "object_repr",
                    "transition", "amount", "currency", "client"]
    list_filter = ["action", "clinic", "client"]
    search_fields = ["object_repr", "actor_username", "remarks", "request_id", "object_id"]
    date_hierarchy = "occurred_at"
    list_select_related = ["clinic"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
