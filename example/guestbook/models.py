from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
    created_by = models.CharField(max_length=20, default="shell")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.text
