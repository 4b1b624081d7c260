#!lua flags=no-writes
-- A page's documents and what one user did to its tweets, in one call (storage/page_documents.py).
-- On one server only: these keys span slots, so a cluster reads the two parts apart.
-- KEYS: the documents to GET, then likes:{U}, then retweets:{U}.
-- ARGV: the tweets' 16-byte members (storage/feeds.FeedRef.member); at least one.
-- Returns {the documents (nil where missing), per member 1 if U likes it else 0,
--          per member 1 if U retweeted it else 0}.
local n = #KEYS - 2
local documents = redis.call('MGET', unpack(KEYS, 1, n))
local liked = redis.call('ZMSCORE', KEYS[n + 1], unpack(ARGV))
local retweeted = redis.call('HMGET', KEYS[n + 2], unpack(ARGV))
for i = 1, #ARGV do
  liked[i] = liked[i] and 1 or 0
  retweeted[i] = retweeted[i] and 1 or 0
end
return {documents, liked, retweeted}
