"""ZooKeeper through kazoo: the ``--zk`` storage backend and the session it shares
with the leader election.

kazoo stays in this package: every kazoo call runs in a
trio worker thread through :class:`~.client.ZkClient`, and no kazoo type or
exception leaves the package.  Import from the modules, bottom up:

* ``url``: ``--zk`` URLs (:class:`~.url.ZkUrl`, :func:`~.url.parse_zk_url`)
* ``errors``: kazoo's exceptions -> the core's
* ``client``: one kazoo session reached through trio threads
  (:class:`~.client.ZkClient`, :func:`~.client.open_zk`)
* ``layout``: where keys, directories and chunks live below the storage root
* ``encoding``: value bytes as stored (compression, chunk manifests)
* ``payloads``: which values go inline and which into chunks, so requests fit
* ``chunks``: chunk nodes, written, read back and swept
* ``transaction``: planning one ``multi``: implicit directories, fencing
  (:class:`~.transaction.ZnodeCheck`)
* ``commit``: sending the planned ``multi`` and mapping its outcome
* ``reads``: pipelined reads, watched and cached when asked to
* ``storage``: :class:`~.storage.ZkStorage`, the ``Storage`` built from them
* ``acl``: the command that locks a tree made with open ACLs to the digest identity
"""
