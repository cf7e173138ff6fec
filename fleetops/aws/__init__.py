"""The AWS edge: the only room that imports aiobotocore and botocore.

``client`` (the WorkSpaces client, its connection settings and call figures), ``roles`` (STS:
assumed roles, refreshable credentials), ``ratelimit`` (the quota buckets of each account and
region), ``retry`` (the retry policy, as data), ``fastparse`` (responses parsed without walking
their plain parts), ``wire`` (the hot JSON calls signed and sent without botocore's per-request
machinery) and ``model`` (botocore's service model: batch limits, id patterns). It imports
the base alone. Nothing is imported here: the commands that never call AWS never load botocore.
"""
