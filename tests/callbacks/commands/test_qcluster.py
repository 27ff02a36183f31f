import pytest
from django.core.management import CommandError, call_command


def test_a_cluster_name_option_is_refused_with_the_way_that_works():
    with pytest.raises(CommandError, match="Q_CLUSTER_NAME=bulk"):
        call_command("qcluster", "--name", "bulk")
