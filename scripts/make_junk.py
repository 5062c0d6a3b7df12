#!/usr/bin/env python3
"""Write almr's hand-written junk corpus for the quality-filter tests.

Usage: python3 scripts/make_junk.py [REPO_ROOT]     (default: this script's ../)

Writes
    fixtures/quality/junk_zh.jsonl   junk that would arrive in a Chinese source
    fixtures/quality/junk_en.jsonl   junk that would arrive in an English source

One JSON object per line, {"id": "junk-zh-001", "category": ..., "text": ...},
UTF-8, ensure_ascii=False, keys in that order, "\\n" ends every line.

Every text below was written by hand for these tests; names, phone numbers,
domains, prices and scores are made up. Nothing is read from the network or
from a dataset. The few tables of numbers are filled from a tiny fixed-seed
LCG (not Python's `random`), so two runs give byte-identical files on any
Python 3 version. The mojibake documents are produced here with Python's own
codecs (utf-8 read as gbk / cp1252 / cp437 and so on) and mixed with
correctly encoded text so that no single re-decoding repairs them.

Categories (in this order in both files):
    boilerplate, symbol_spam, navigation_menu, number_table, code_in_prose,
    mojibake, wrong_language, repeated_ngram, repeated_line

Licence: Apache-2.0, the same as almr.
"""

import collections
import json
import os
import re
import sys

CATEGORIES = [
    "boilerplate",
    "symbol_spam",
    "navigation_menu",
    "number_table",
    "code_in_prose",
    "mojibake",
    "wrong_language",
    "repeated_ngram",
    "repeated_line",
]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

class Rng:
    """64-bit LCG (Knuth's MMIX constants); independent of Python's random."""

    MASK = (1 << 64) - 1

    def __init__(self, seed):
        self.state = (seed * 0x9E3779B97F4A7C15 + 1) & self.MASK

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & self.MASK
        return self.state >> 33  # 31 bits

    def randint(self, lo, hi):
        return lo + self.next() % (hi - lo + 1)

    def choice(self, seq):
        return seq[self.next() % len(seq)]

    def uniform(self, lo, hi):
        return lo + (hi - lo) * (self.next() / float(1 << 31))


def lines(*parts):
    return "\n".join(parts)


def block(s):
    """Strip the leading/trailing newline of a triple-quoted block."""
    return s.strip("\n")


def utf8_as(s, enc):
    """UTF-8 bytes of s decoded with the wrong codec (errors -> U+FFFD)."""
    return s.encode("utf-8").decode(enc, errors="replace")


def legacy_as_utf8(s, enc):
    """s encoded with a legacy codec, then decoded as UTF-8 (errors -> U+FFFD)."""
    return s.encode(enc).decode("utf-8", errors="replace")


def kunkun(s):
    """The classic 锟斤拷 chain: GBK text read as UTF-8 (lossy), saved as UTF-8,
    read back as GBK."""
    return utf8_as(legacy_as_utf8(s, "gbk"), "gbk")


def repeat_sep(item, n, sep=" "):
    return sep.join([item] * n)


def cycle_join(items, n, sep=" "):
    return sep.join(items[i % len(items)] for i in range(n))


# --------------------------------------------------------------------------
# zh: boilerplate
# --------------------------------------------------------------------------

def zh_boilerplate():
    docs = []
    docs.append(block("""
返回首页 | 返回顶部
关于我们 | 联系我们 | 广告服务 | 网站地图 | 法律声明 | 隐私政策 | 招聘英才 | 意见反馈
Copyright © 2005-2024 晨星资讯网 版权所有 未经授权禁止转载、摘编、复制或建立镜像
京ICP备05012345号-3 | 京公网安备 11010502031234号 | 互联网新闻信息服务许可证：11120230017
违法和不良信息举报电话：010-58610000 | 举报邮箱：jubao@chenxing.example.cn
网络文化经营许可证 京网文〔2023〕1234-056号 | 广播电视节目制作经营许可证（京）字第0876号
本网站所刊载信息，不代表本站观点。如需转载请与本站联系。
客服热线：400-800-1234（工作日 9:00-18:00）
"""))
    docs.append(block("""
本网站使用 Cookie 来改善您的浏览体验、分析网站流量并提供个性化内容。继续浏览本网站即表示您同意我们使用 Cookie。了解更多请阅读我们的《隐私政策》和《Cookie 政策》。
[全部接受]  [仅限必要 Cookie]  [管理偏好设置]
分享到：微信 | 微博 | QQ空间 | QQ好友 | 豆瓣 | 复制链接
关注我们：官方微信  官方微博  抖音号  视频号
扫描二维码关注公众号，获取更多精彩内容
活动报名将于本周五下午五点截止。
© 2024 青禾文化传播有限公司 版权所有  沪ICP备19087654号-2
隐私政策 | 用户协议 | 联系我们 | 返回首页
"""))
    docs.append(block("""
您需要 登录 才可以下载或查看，没有账号？立即注册
回复  举报
使用道具  举报
返回列表  发新帖
快速回复  返回顶部  返回列表
本版积分规则
手机版 | 小黑屋 | 清风论坛 ( 粤ICP备10023456号-1 ) | 粤公网安备 44030502000321号
GMT+8, 2023-11-17 21:43 , Processed in 0.052317 second(s), 31 queries , Gzip On, Redis On.
Powered by 清风社区 X3.5 © 2001-2023 清风网络科技
快速回复 返回顶部 返回列表
"""))
    docs.append(block("""
网站首页 | 关于我们 | 产品中心 | 新闻动态 | 技术支持 | 联系我们
联系我们
地址：江苏省苏州市工业园区星湖街 328 号创意产业园 6 栋 12 楼
电话：0512-66880000  传真：0512-66880001
手机：139-0000-5678（王经理）
邮箱：sales@hengtai.example.com
友情链接：恒泰机械 | 江南阀门网 | 泵业信息网 | 工业品采购平台 | 机电商情网
版权所有 © 2012-2024 苏州恒泰精密设备有限公司  苏ICP备12034567号-1
技术支持：云帆网络  网站地图  XML地图
免责声明：本站部分图片来源于网络，如有侵权请联系删除。
网站首页 | 关于我们 | 产品中心 | 新闻动态 | 技术支持 | 联系我们
"""))
    docs.append(block("""
首页 > 生活随笔 > 正文
作者：小林  发布时间：2023-06-08 10:25  阅读：1,284  评论：3
（正文加载失败，请刷新页面重试）
本文由作者授权发布，转载请注明出处。
声明：本站部分内容来源于互联网，仅供学习交流，版权归原作者所有。如有侵权，请联系我们删除。
上一篇：没有了
下一篇：夏天到了，记得多喝水
责任编辑：张三
相关阅读
猜你喜欢
热门推荐
点赞(12)  收藏  分享
发表评论
请登录后发表评论  登录 | 注册
© 2016-2024 小林的博客 All Rights Reserved.  浙ICP备16054321号
"""))
    docs.append(block("""
常用链接：中国政府网 | 省政府门户网站 | 市人大常委会 | 市政协 | 市纪委监委 | 市中级人民法院 | 市人民检察院
主办单位：临江市人民政府办公室  承办单位：临江市大数据发展管理中心
网站标识码：3301000012  浙ICP备05008765号  浙公网安备 33010202000123号
地址：临江市行政服务中心 3 号楼  邮编：310000  联系电话：0571-87650000
建议使用 1920×1080 分辨率，IE10 以上版本浏览器浏览本站
政府网站找错 | 适老化服务 | 无障碍浏览 | 网站地图 | 联系我们 | 隐私声明 | 使用帮助
本网站由临江市人民政府办公室主办，未经许可不得转载本网站内容。
扫一扫在手机打开当前页
【打印本页】【关闭窗口】【收藏本页】
"""))
    docs.append(block("""
打开App，阅读体验更佳
展开全文
打开App 查看更多精彩内容
下载客户端，领取新人专享礼包
长按识别二维码，关注官方公众号
点击右上角「···」分享到朋友圈
已有 2.3 万人关注
打开App，看高清大图
相关推荐
打开App 查看更多评论
举报/反馈
© 2024 今日看点 版权所有
"""))
    return docs


# --------------------------------------------------------------------------
# zh: symbol_spam
# --------------------------------------------------------------------------

def zh_symbol_spam():
    r = Rng(101)
    docs = []
    docs.append(lines(
        "★★★★★【限时特惠】★★★★★",
        "☆☆☆ 全场五折起 ☆☆☆",
        "→→→→→ 点击进入 ←←←←←",
        "♥" * 24,
        "✓正品保证 ✓七天无理由 ✓顺丰包邮 ✓货到付款",
        "$$$ 下单立减 50 元 $$$ !!!!!!",
        "【【【 最后 3 小时 】】】",
        "※" * 24,
        "★" * 24,
    ))
    docs.append(lines(
        "🔥🔥🔥爆款来袭🔥🔥🔥",
        "💰💰💰在家手机操作 日入500+💰💰💰",
        "👉👉👉 加微：abc888 👈👈👈",
        "✅✅✅ 不收押金 ✅ 不用囤货 ✅ 宝妈学生党都能做",
        "🎁🎁🎁 前100名免费领取 🎁🎁🎁",
        "⚡⚡⚡ 名额有限 先到先得 ⚡⚡⚡",
        "💯" * 12,
        "❤️" * 12,
        "👇👇👇👇👇👇👇👇",
        "📱📱📱 私信发送【666】📱📱📱",
    ))
    docs.append(block("""
╔══════════════════════════════╗
║  ★☆★☆  欢迎光临本店  ☆★☆★  ║
╠══════════════════════════════╣
║  ◆ 品质保证  ◆ 假一赔十      ║
║  ◆ 全国包邮  ◆ 售后无忧      ║
╚══════════════════════════════╝
  ┏━━━┓┏━━━┓┏━━━┓┏━━━┓
  ┃ 新 ┃┃ 品 ┃┃ 上 ┃┃ 市 ┃
  ┗━━━┛┗━━━┛┗━━━┛┗━━━┛
▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓
░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░
"""))
    docs.append(lines(
        "【官方网站】◆◆高仿手表◆◆ ▶▶▶ 一比一复刻 ◀◀◀",
        "☎☎☎ 1 3 8 - 0 0 0 0 - 0 0 0 0 ☎☎☎",
        "〓" * 18,
        "■■■ 货到付款 ■■■ □□□ 支持验货 □□□",
        "『『『 Q Q：１２３４５６７８ 』』』",
        "▲▲▲ 诚信经营 ▼▼▼ 十年老店 ▲▲▲",
        "〓" * 18,
        "◆◆高仿包包◆◆ ◆◆高仿鞋◆◆ ◆◆高仿眼镜◆◆",
        "☎☎☎ 1 3 8 - 0 0 0 0 - 0 0 0 0 ☎☎☎",
    ))
    faces = ["٩(๑❛ᴗ❛๑)۶", "(｡･ω･｡)ﾉ♡", "~~~~~(>_<)~~~~~", "✧*｡٩(ˊᗜˋ*)و✧*｡",
             "♪(´▽｀)♪", "(＾▽＾)ノ", "(╯°□°）╯︵ ┻━┻", "ヾ(≧▽≦*)o"]
    rows = ["(＾▽＾)ノ～～～ 大家好呀 ☆*:.｡.o(≧▽≦)o.｡.:*☆"]
    for i in range(10):
        face = faces[i % len(faces)]
        rows.append(repeat_sep(face, r.randint(3, 5)))
    docs.append(lines(*rows))
    docs.append(lines(
        "=-" * 16 + "=",
        "~~~~~~~~~ 每日签到 ~~~~~~~~~",
        "=-" * 16 + "=",
        "＊" * 15,
        repeat_sep("+1", 12),
        "……" * 10,
        "!" * 31,
        "？" * 15,
        "＃" * 15,
        "(/≧▽≦)/ 签到成功 +5 积分 ✿✿✿",
        "=-" * 16 + "=",
    ))
    docs.append(lines(
        "↓↓↓↓↓↓↓↓ 资源下载地址 ↓↓↓↓↓↓↓↓",
        "▶▶▶ 链接：https://pan.example.cn/s/1aBcD_xYz ◀◀◀",
        "▶▶▶ 提取码：k7q2 ◀◀◀",
        "※" * 20,
        "◇◇◇ 解压密码：www.example.cn ◇◇◇",
        "●●● 失效请留言 ●●● ○○○ 秒补 ○○○",
        "↑" * 24,
        "♛♛♛ VIP 会员专享 ♛♛♛ ✦✦✦ 永久免费 ✦✦✦",
        "↓↓↓↓↓↓↓↓ 备用地址 ↓↓↓↓↓↓↓↓",
        "▶▶▶ 链接：https://pan.example.cn/s/9ZyX_wVu ◀◀◀",
    ))
    return docs


# --------------------------------------------------------------------------
# zh: navigation_menu
# --------------------------------------------------------------------------

def zh_navigation_menu():
    docs = []
    docs.append(lines(
        "登录 | 注册 | 手机版 | 设为首页 | 加入收藏",
        " | ".join(["首页", "新闻", "体育", "娱乐", "财经", "科技", "汽车", "房产", "教育",
                    "旅游", "健康", "时尚", "游戏", "视频", "图片", "博客", "论坛", "读书",
                    "历史", "军事", "国际", "社会", "文化", "公益", "星座", "育儿", "美食"]),
        " | ".join(["国内", "国际", "社会", "评论", "专题", "滚动", "排行", "图集", "直播"]),
        " | ".join(["NBA", "CBA", "中超", "英超", "西甲", "意甲", "德甲", "网球", "高尔夫", "综合"]),
        " | ".join(["股票", "基金", "理财", "银行", "保险", "期货", "外汇", "黄金", "债券"]),
    ))
    docs.append(lines(
        "当前位置：首页 > 产品中心 > 工业阀门 > 球阀 > Q41F-16C",
        "产品分类",
        "> 闸阀", "> 截止阀", "> 球阀", "> 蝶阀", "> 止回阀", "> 安全阀", "> 减压阀",
        "> 调节阀", "> 电动阀门", "> 气动阀门", "> 不锈钢阀门", "> 阀门配件",
        "您的位置：网站首页 >> 产品中心 >> 球阀",
        "上一个：Q11F-16P   下一个：Q47F-25",
    ))
    docs.append(lines(
        "网站地图",
        "关于我们", "  公司简介", "  董事长致辞", "  组织架构", "  企业荣誉", "  发展历程",
        "新闻中心", "  公司新闻", "  行业动态", "  媒体报道", "  通知公告",
        "产品中心", "  智能电表", "  智能水表", "  燃气表", "  采集终端", "  系统软件",
        "解决方案", "  智慧水务", "  智慧能源", "  智慧园区",
        "服务支持", "  资料下载", "  常见问题", "  售后服务",
        "加入我们", "  社会招聘", "  校园招聘",
        "联系我们", "  联系方式", "  在线留言",
    ))
    docs.append(lines(
        "全部商品分类",
        "家用电器",
        "手机 / 运营商 / 数码",
        "电脑 / 办公 / 文具",
        "家居 / 家具 / 家装 / 厨具",
        "男装 / 女装 / 童装 / 内衣",
        "美妆 / 个护清洁 / 宠物",
        "女鞋 / 箱包 / 钟表 / 珠宝",
        "男鞋 / 运动 / 户外",
        "房产 / 汽车 / 汽车用品",
        "母婴 / 玩具乐器",
        "食品 / 酒类 / 生鲜 / 特产",
        "艺术 / 礼品鲜花 / 农资绿植",
        "医药保健 / 计生情趣",
        "图书 / 文娱 / 教育 / 电子书",
        "机票 / 酒店 / 旅游 / 生活",
        "理财 / 众筹 / 白条 / 保险",
        "安装 / 维修 / 清洗 / 二手",
        "工业品",
    ))
    docs.append(lines(
        "网站首页 · 学校概况 · 机构设置 · 师资队伍 · 人才培养 · 科学研究 · 合作交流 · 招生就业 · 校园文化 · 信息公开",
        "学校简介 · 现任领导 · 历任领导 · 校史沿革 · 校园风光 · 统计概览",
        "党政部门 · 教学单位 · 科研机构 · 直属单位 · 附属单位",
        "本科生教育 · 研究生教育 · 继续教育 · 国际教育",
        "快速通道：信息门户 · 电子邮箱 · 图书馆 · 教务系统 · 财务查询 · 校历 · 校园地图 · English",
    ))
    docs.append(lines(
        "首页 上一页 1 2 3 4 5 6 7 8 9 10 ... 87 下一页 尾页 共 87 页 跳转到 页 确定",
        "热门标签：",
        "  ".join(["装修", "家居", "设计", "北欧风", "小户型", "收纳", "厨房", "卫生间", "客厅",
                   "卧室", "儿童房", "阳台", "软装", "灯具", "地板", "瓷砖", "吊顶", "墙纸",
                   "沙发", "餐桌"]),
        "按时间：今天 | 最近三天 | 最近一周 | 最近一月 | 全部",
        "排序：默认 | 最新 | 最热 | 评论最多",
        "首页 上一页 1 2 3 4 5 6 7 8 9 10 ... 87 下一页 尾页",
    ))
    docs.append(lines(
        "» 公司简介  » 企业文化  » 发展历程  » 荣誉资质",
        "» 新闻动态  » 行业资讯  » 媒体报道  » 视频中心",
        "» 产品展示  » 工程案例  » 技术文章  » 下载中心",
        "» 人才招聘  » 在线留言  » 联系方式  » 网站地图",
        "首页   分类   发现   购物车   我的",
        "首页 › 案例 › 商业空间 › 办公室",
    ))
    return docs


# --------------------------------------------------------------------------
# zh: number_table
# --------------------------------------------------------------------------

def zh_number_table():
    docs = []

    r = Rng(201)
    names = ["华元股份", "东辰科技", "金桥电子", "海岳重工", "天盛药业", "长风能源", "南岭化工",
             "北辰物流", "星河传媒", "中恒建设", "瑞丰银行", "远航汽车", "安泰保险", "汇通证券",
             "新禾农业", "联创电气"]
    rows = ["代码\t名称\t最新价\t涨跌幅\t涨跌额\t成交量(手)\t成交额(万)\t最高\t最低\t今开\t昨收"]
    for i, name in enumerate(names):
        code = r.choice(["600", "601", "000", "002", "300"]) + "%03d" % r.randint(1, 999)
        prev = round(r.uniform(3, 80), 2)
        pct = round(r.uniform(-9.9, 9.9), 2)
        last = round(prev * (1 + pct / 100), 2)
        hi = round(max(last, prev) * (1 + r.uniform(0, 0.03)), 2)
        lo = round(min(last, prev) * (1 - r.uniform(0, 0.03)), 2)
        op = round(r.uniform(lo, hi), 2)
        vol = r.randint(5000, 900000)
        amt = round(vol * last / 100, 1)
        rows.append("%s\t%s\t%.2f\t%+.2f%%\t%+.2f\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f"
                    % (code, name, last, pct, last - prev, vol, amt, hi, lo, op, prev))
    docs.append(lines(*rows))

    r = Rng(202)
    teams = ["上海", "北京", "山东", "成都", "武汉", "天津", "浙江", "河南", "长春", "青岛",
             "沧州", "深圳", "南通", "梅州", "大连", "广州"]
    stats = []
    for t in teams:
        w = r.randint(3, 20)
        d = r.randint(2, 10)
        l_ = 30 - w - d if 30 - w - d >= 0 else 0
        gf = r.randint(20, 65)
        ga = r.randint(18, 60)
        stats.append((w * 3 + d, t, w, d, l_, gf, ga))
    stats.sort(key=lambda x: (-x[0], -(x[5] - x[6])))
    rows = ["排名 球队 场次 胜 平 负 进球 失球 净胜球 积分"]
    for i, (pts, t, w, d, l_, gf, ga) in enumerate(stats, 1):
        rows.append("%d %s %d %d %d %d %d %d %+d %d" % (i, t, w + d + l_, w, d, l_, gf, ga, gf - ga, pts))
    docs.append(lines(*rows))

    r = Rng(203)
    rows = ["车次 | 出发站 | 到达站 | 出发 | 到达 | 历时 | 二等座 | 一等座 | 商务座"]
    t = 6 * 60 + 5
    for i in range(18):
        train = r.choice(["G", "G", "D"]) + str(r.randint(1, 199) if i % 3 else r.randint(101, 169))
        dur = r.randint(268, 365)
        arr = t + dur
        price2 = r.choice([553.0, 576.5, 598.0, 604.0, 662.0])
        rows.append("%s | 北京南 | 上海虹桥 | %02d:%02d | %02d:%02d | %02d:%02d | %.1f | %.1f | %.1f"
                    % (train, t // 60, t % 60, (arr // 60) % 24, arr % 60, dur // 60, dur % 60,
                       price2, price2 * 1.6, price2 * 3.1))
        t += r.randint(15, 60)
    docs.append(lines(*rows))

    r = Rng(204)
    rows = ["期号    开奖日期    红球                  蓝球  销售额(元)"]
    for i in range(1, 25):
        reds = []
        while len(reds) < 6:
            n = r.randint(1, 33)
            if n not in reds:
                reds.append(n)
        reds.sort()
        rows.append("2024%03d %s  %s  %02d  %s" % (
            i, "2024-%02d-%02d" % (1 + (i * 2) // 28, 1 + (i * 2) % 28),
            " ".join("%02d" % n for n in reds), r.randint(1, 16),
            "{:,}".format(r.randint(320000000, 420000000))))
    docs.append(lines(*rows))

    r = Rng(205)
    veg = ["大白菜", "土豆", "西红柿", "黄瓜", "茄子", "青椒", "芹菜", "菠菜", "胡萝卜", "白萝卜",
           "洋葱", "生姜", "大蒜", "冬瓜", "南瓜", "豆角", "莲藕", "香菇", "生菜", "韭菜"]
    rows = ["品名,最低价,最高价,平均价,单位,日期"]
    for v in veg:
        lo = round(r.uniform(0.4, 6.0), 2)
        hi = round(lo * r.uniform(1.1, 1.6), 2)
        rows.append("%s,%.2f,%.2f,%.2f,元/斤,2024-03-18" % (v, lo, hi, (lo + hi) / 2))
    docs.append(lines(*rows))

    r = Rng(206)
    rows = ["日期 天气 最高气温 最低气温 风力 AQI"]
    for d in range(1, 32):
        hi = r.randint(29, 38)
        rows.append("2024-07-%02d %s %d℃ %d℃ %d级 %d" % (
            d, r.choice(["晴", "多云", "阴", "小雨", "雷阵雨"]), hi, hi - r.randint(6, 10),
            r.randint(1, 4), r.randint(25, 130)))
    docs.append(lines(*rows))

    r = Rng(207)
    rows = ["学号 语文 数学 英语 物理 化学 生物 总分 名次"]
    recs = []
    for i in range(1, 33):
        s = [r.randint(78, 142), r.randint(60, 150), r.randint(70, 146),
             r.randint(40, 100), r.randint(38, 100), r.randint(45, 100)]
        recs.append(("2023%04d" % (1000 + i), s))
    recs.sort(key=lambda x: -sum(x[1]))
    for rank, (sid, s) in enumerate(recs, 1):
        rows.append("%s %s %d %d" % (sid, " ".join(str(x) for x in s), sum(s), rank))
    docs.append(lines(*rows))
    return docs


# --------------------------------------------------------------------------
# zh: code_in_prose
# --------------------------------------------------------------------------

def zh_code_in_prose():
    docs = []
    docs.append("楼主你好，我按照书上的例子写了下面这段代码，编译能通过但是运行结果不对，求大神帮忙看看：\n" + block(r"""
#include <stdio.h>
#include <string.h>

int main(void) {
    char buf[16];
    int count = 0;
    while (fgets(buf, sizeof(buf), stdin) != NULL) {
        size_t n = strlen(buf);
        if (n > 0 && buf[n - 1] == '\n') {
            buf[n - 1] = '\0';
        }
        if (strcmp(buf, "quit") == 0) {
            break;
        }
        count++;
        printf("%d: %s\n", count, buf);
    }
    return 0;
}
"""))
    docs.append(block(r"""
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULTS = {"timeout": 30, "retries": 3, "verbose": False, "proxy": None}


def load_config(path):
    path = Path(path)
    if not path.exists():
        logger.warning("配置文件 %s 不存在，使用默认配置", path)
        return dict(DEFAULTS)
    with path.open(encoding="utf-8") as f:
        cfg = json.load(f)
    for key, value in DEFAULTS.items():
        cfg.setdefault(key, value)
    return cfg


if __name__ == "__main__":
    cfg = load_config("config.json")
    print(f"timeout={cfg['timeout']} retries={cfg['retries']}")
""") + "\n运行环境：Python 3.8，以上代码仅供参考。")
    docs.append(block(r"""
$(document).ready(function () {
    $("#submit-btn").on("click", function (e) {
        e.preventDefault();
        var name = $.trim($("#username").val());
        if (name === "") {
            alert("用户名不能为空！");
            return false;
        }
        $.ajax({
            url: "/api/user/check",
            type: "POST",
            data: { username: name },
            dataType: "json",
            success: function (res) {
                if (res.code === 0) {
                    window.location.href = "/index.html";
                } else {
                    $(".tips").text(res.msg).show();
                }
            },
            error: function () {
                $(".tips").text("网络异常，请稍后再试").show();
            }
        });
    });
});
"""))
    docs.append("接口返回如下：\n" + block(r"""
{
  "code": 0,
  "msg": "success",
  "data": {
    "total": 2,
    "page": 1,
    "list": [
      {"id": 10231, "title": "春季新品", "price": 129.00, "stock": 58, "tags": ["新品", "包邮"]},
      {"id": 10232, "title": "夏季清仓", "price": 59.90, "stock": 0, "tags": []}
    ]
  },
  "timestamp": 1711012345678
}
"""))
    docs.append(block(r"""
/* 公共样式 */
* { margin: 0; padding: 0; box-sizing: border-box; }
body { font: 14px/1.5 "Microsoft YaHei", "PingFang SC", sans-serif; color: #333; }
a { color: #333; text-decoration: none; }
.header { width: 100%; height: 60px; background: #fff; box-shadow: 0 2px 4px rgba(0, 0, 0, .1); }
.header .logo { float: left; margin: 10px 20px; }
.nav li { display: inline-block; padding: 0 15px; line-height: 60px; }
.nav li a:hover, .nav li.active a { color: #e4393c; }
.footer { padding: 30px 0; text-align: center; color: #999; background: #f5f5f5; }
@media screen and (max-width: 768px) {
  .nav { display: none; }
  .header .logo { margin: 10px; }
}
"""))
    docs.append("每天凌晨跑一次的备份脚本，记录一下：\n" + block(r"""
#!/bin/bash
set -euo pipefail
BACKUP_DIR="/data/backup/$(date +%Y%m%d)"
mkdir -p "${BACKUP_DIR}"
for db in app_main app_log app_order; do
    if ! mysqldump -uroot -p"${MYSQL_PWD}" "${db}" | gzip > "${BACKUP_DIR}/${db}.sql.gz"; then
        echo "备份 ${db} 失败" >&2
        exit 1
    fi
done
find /data/backup -maxdepth 1 -type d -mtime +7 -exec rm -rf {} \;
echo "done: $(du -sh "${BACKUP_DIR}" | cut -f1)"
"""))
    docs.append("面试常考的双重检查锁单例写法，直接上代码：\n" + block(r"""
public class Singleton {
    private static volatile Singleton instance;

    private Singleton() {
    }

    public static Singleton getInstance() {
        if (instance == null) {
            synchronized (Singleton.class) {
                if (instance == null) {
                    instance = new Singleton();
                }
            }
        }
        return instance;
    }
}
""") + "\n注意 volatile 不能省。")
    return docs


# --------------------------------------------------------------------------
# zh: mojibake
# --------------------------------------------------------------------------

def zh_mojibake():
    docs = []
    # 1. UTF-8 read as GBK, odd-length snippets, between correct paragraphs.
    snippets = [
        "今天上午，市政府召开新闻发布会",
        "介绍了今年一季度全市经济运行情况",
        "地区生产总值同比增长",
        "规模以上工业增加值增长",
        "社会消费品零售总额达到",
        "城镇新增就业人数同比增加",
        "居民人均可支配收入实际增长",
    ]
    garbled = "，".join(utf8_as(s, "gbk") for s in snippets)
    docs.append(lines(
        "一季度经济运行情况发布",
        garbled + "5.6%。",
        utf8_as("下一步将继续加大稳增长政策力度。", "gbk"),
        "发布会上，市统计局负责人回答了记者提问。",
        utf8_as("她表示，当前经济运行总体平稳，但外部环境依然复杂。", "gbk"),
        "（记者 王磊）",
    ))
    # 2. 锟斤拷 chain in a product page, title correct.
    docs.append(lines(
        "商品详情",
        "商品名称：" + kunkun("纯棉短袖T恤男夏季宽松"),
        "商品编号：100023456789",
        "店铺：" + kunkun("优品服饰旗舰店"),
        "颜色：" + kunkun("白色") + " / " + kunkun("黑色") + " / " + kunkun("藏青"),
        "尺码：M L XL 2XL",
        "商品介绍：" + kunkun("采用精梳棉面料，柔软透气，吸汗不闷热，适合日常穿着。"),
        "商品参数",
        "面料：" + kunkun("精梳棉") + " 95%  " + kunkun("氨纶") + " 5%",
        "领型：" + kunkun("圆领") + "  袖长：" + kunkun("短袖"),
        "适用季节：" + kunkun("夏季"),
        "售后保障：七天无理由退货",
        "温馨提示：" + kunkun("由于拍摄光线及显示器不同，图片与实物可能存在轻微色差。"),
    ))
    # 3. 烫烫烫 / 屯屯屯 debug garbage in a scraped record, plus 锟斤拷.
    docs.append(lines(
        "用户资料",
        "用户名：烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫",
        "昵称：屯屯屯屯屯屯屯屯屯屯屯屯屯屯",
        "所在地：烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫烫" + utf8_as("烫", "gbk")[:2],
        "签名：" + kunkun("这个人很懒，什么都没有留下"),
        "注册时间：2019-04-12",
        "积分：屯屯屯屯屯屯屯屯" + "\ufffd\ufffd",
        "最后登录：2024-02-29 23:59",
        "个人简介：烫烫烫烫烫烫烫烫烫烫烫烫" + kunkun("喜欢旅行和摄影"),
        "好友：屯屯屯屯 | 屯屯屯屯屯屯 | 烫烫烫烫烫烫",
        "最近访客：" + utf8_as("小王 老李 阿明", "gbk"),
    ))
    # 4. UTF-8 read as cp1252 (undefined bytes -> U+FFFD), mixed with correct text.
    p1 = "春天来了，公园里的花陆续开放。"
    p2 = "周末前来赏花的市民络绎不绝，不少人带着孩子在草坪上放风筝。"
    p3 = "公园管理处提醒游客文明游园，不要攀折花木。"
    p4 = "据介绍，今年园内新种植了樱花、海棠和郁金香，花期将持续到四月中旬。"
    p5 = "节假日期间，公园将延长开放时间至晚上九点，并增开两条接驳公交线路。"
    docs.append(lines(p1, utf8_as(p2, "cp1252"), utf8_as(p3, "cp1252"), p4,
                      utf8_as(p5, "cp1252"), "（本报记者 李娜 摄影报道）"))
    # 5. GBK bytes read as UTF-8: almost everything becomes U+FFFD, ASCII survives.
    docs.append(lines(
        "第3章",
        legacy_as_utf8("天色渐渐暗了下来，他推开窗户，看见远处的山上亮起了一盏灯。", "gbk"),
        legacy_as_utf8("“明天一早就出发。”师父说完，转身走进了屋里。", "gbk"),
        legacy_as_utf8("他在窗前站了很久，直到那盏灯熄灭，才回到床上躺下。", "gbk"),
        "3.",
        legacy_as_utf8("第二天清晨，山间起了大雾，两人沿着溪边的小路往北走去。", "gbk"),
        "本章完，共 2,386 字",
        "上一章 | 目录 | 下一章",
    ))
    # 6. Big5 text read as GBK, correct simplified text around it.
    trad = "臺灣的夜市文化非常豐富，每到晚上，街道兩旁擠滿了小吃攤。"
    trad2 = "遊客可以品嚐蚵仔煎、鹽酥雞、珍珠奶茶等各式各樣的美食。"
    trad3 = "建議晚上七點以後前往，人潮較多時請注意隨身財物。"
    docs.append(lines(
        "旅游攻略 | 夜市美食推荐",
        "说起台湾旅游，夜市是很多游客必去的地方。",
        trad.encode("big5").decode("gbk", errors="replace"),
        trad2.encode("big5").decode("gbk", errors="replace"),
        trad3.encode("big5").decode("gbk", errors="replace"),
        "来源：网友投稿  编辑：小周",
    ))
    # 7. Converted txt novel: chapter headings partly 锟斤拷, body partly UTF-8-as-GBK.
    docs.append(lines(
        "《山河旧梦》",
        "第十二章 " + kunkun("雪夜"),
        "北风卷着雪花扑在窗纸上，沙沙作响。" + utf8_as("屋里的炉火已经快要熄灭了", "gbk"),
        kunkun("她把最后一根柴添进去，") + "火苗又蹿了起来。",
        utf8_as("远处传来几声狗叫，随后一切又归于寂静。", "gbk") + "\ufffd\ufffd\ufffd",
        "她靠在椅背上，听着窗外的风声，渐渐睡着了。",
        "第十三章 " + kunkun("归途"),
        kunkun("天亮以后，雪停了。") + "院子里白茫茫一片，" + utf8_as("只有几行麻雀的脚印", "gbk"),
    ))
    return docs


# --------------------------------------------------------------------------
# zh: wrong_language (English, Japanese, Korean, French)
# --------------------------------------------------------------------------

def zh_wrong_language():
    return [
        # English
        "The city council voted on Tuesday to extend the opening hours of public swimming "
        "pools through the end of September, after a summer in which temperatures regularly "
        "passed 35 degrees. Council members said the decision would cost about two hundred "
        "thousand dollars, most of which will go to lifeguard wages. Residents who spoke at "
        "the meeting welcomed the change but asked for more shaded seating and free drinking "
        "water at every site. The pools will now close at nine in the evening on weekdays "
        "and at ten on weekends.",
        "Keeping a sourdough starter alive is easier than most people think. Once it is "
        "established, you only need to feed it with equal weights of flour and water once a "
        "day if it lives on the kitchen counter, or once a week if you keep it in the fridge. "
        "Before baking, take it out the night before and give it two feedings so that it is "
        "bubbly and active. If a grey liquid collects on top, simply pour it off: it is "
        "alcohol produced by hungry yeast and a sign that the starter needs to be fed more "
        "often, not that it has gone bad.",
        # Japanese
        "今年の春は例年より気温が高く、東京では三月の半ばに桜が満開を迎えました。週末になると"
        "公園には多くの人が集まり、シートを広げてお弁当を食べたり、写真を撮ったりしていました。"
        "一方で、花粉の飛散量も多く、マスクが手放せないという声も聞かれます。気象庁によると、"
        "来週からは雨の日が続く見込みで、桜の見ごろは今週末までになりそうです。出かける予定の"
        "ある方は、天気予報をこまめに確認し、折りたたみ傘を持っていくと安心でしょう。夜桜の"
        "ライトアップは午後九時まで行われています。",
        "市立図書館では、来月から開館時間を延長し、平日は午後八時まで利用できるようになります。"
        "仕事や学校の帰りに立ち寄りたいという利用者の要望に応えたもので、館内の自習スペースも"
        "二十席増やす予定です。また、電子書籍の貸し出しサービスも始まり、スマートフォンや"
        "タブレットから二週間まで無料で読むことができます。利用には図書館カードの番号と"
        "パスワードが必要です。詳しくは窓口またはホームページでご確認ください。なお、年末年始は"
        "通常どおり休館となります。",
        # Korean
        "올해 여름은 유난히 더웠다. 장마가 예년보다 일찍 끝나면서 7월 중순부터 낮 기온이 "
        "연일 35도를 넘었고, 밤에도 기온이 좀처럼 내려가지 않는 열대야가 이어졌다. 전문가들은 "
        "기후 변화로 인해 이러한 폭염이 앞으로 더 자주 나타날 것이라고 경고한다. 정부는 무더위 "
        "쉼터를 늘리고 야외 작업 시간을 조정하는 등 대책을 내놓았지만, 현장에서는 여전히 "
        "부족하다는 목소리가 나온다. 특히 혼자 사는 노인과 야외에서 일하는 노동자들은 건강 "
        "관리에 각별히 주의해야 한다.",
        "주말마다 동네 작은 빵집에 들르는 것이 나의 소소한 즐거움이다. 문을 열고 들어서면 갓 "
        "구운 식빵 냄새가 가게 안을 가득 채우고, 주인 아주머니는 늘 밝은 얼굴로 인사를 건넨다. "
        "이 가게는 매일 아침 여섯 시부터 반죽을 시작해서 아홉 시쯤이면 첫 빵이 나온다고 한다. "
        "인기 있는 단팥빵은 점심 무렵이면 다 팔리기 때문에 조금 서둘러야 한다. 큰 프랜차이즈 "
        "빵집이 곳곳에 생겼지만, 나는 이 작은 가게의 소박한 맛이 더 좋다. 다음 주에는 "
        "친구에게도 이곳을 소개해 줄 생각이다.",
        # French
        "La médiathèque municipale organise, du 12 au 20 octobre, une semaine consacrée à la "
        "bande dessinée. Au programme : des rencontres avec des auteurs de la région, des "
        "ateliers d'initiation au dessin pour les enfants à partir de huit ans et une exposition "
        "de planches originales dans le hall d'entrée. L'entrée est libre et gratuite, mais les "
        "ateliers sont limités à douze participants ; il est donc conseillé de s'inscrire à "
        "l'accueil ou par téléphone. Les horaires d'ouverture restent inchangés pendant toute "
        "la durée de l'événement.",
        "Après trois jours de grève, la circulation des trains reprend progressivement sur "
        "l'ensemble du réseau régional. La direction prévoit deux trains sur trois en moyenne "
        "ce jeudi, et un retour à la normale d'ici la fin de la semaine. Les voyageurs sont "
        "invités à consulter les horaires avant de se déplacer, car certaines lignes "
        "secondaires resteront perturbées. Les abonnés pourront demander un remboursement "
        "partiel de leur abonnement mensuel sur le site de la compagnie, à condition de "
        "présenter leur justificatif avant la fin du mois.",
    ]


# --------------------------------------------------------------------------
# zh: repeated_ngram
# --------------------------------------------------------------------------

def zh_repeated_ngram():
    r = Rng(301)
    docs = []
    docs.append("免费下载 " + repeat_sep("免费下载", r.randint(50, 70)) + " 最新版免费下载")
    docs.append("点击领取红包" * r.randint(80, 100))
    docs.append("最新电影在线观看，" + cycle_join(
        ["最新电影在线观看", "高清电影免费看", "最新电影在线观看", "免费电影下载", "好看的电影"],
        r.randint(45, 60), "，"))
    docs.append(cycle_join(
        ["代写论文", "论文代写", "代写毕业论文", "毕业论文代写", "代写论文价格", "论文代写多少钱"],
        r.randint(70, 90), " "))
    kw = "深圳装修公司"
    docs.append("_".join([kw, kw + "哪家好", kw + "排名", kw + "电话", kw + "报价", kw + "推荐"] * 8)
                + "\n" + kw + "，" + repeat_sep(kw, 30, "，"))
    cities = ["北京", "上海", "广州", "深圳", "杭州", "南京", "武汉", "成都", "重庆", "西安",
              "天津", "苏州", "长沙", "郑州", "青岛"]
    parts = []
    for i in range(45):
        parts.append(cities[i % len(cities)] + r.choice(["治疗脱发", "脱发治疗", "治疗脱发医院"]))
    docs.append("专业治疗脱发 " + " ".join(parts) + " 治疗脱发哪家好")
    docs.append(lines(
        "顶" * 40,
        "好帖" * 30,
        "哈哈" * 60,
        "沙发沙发沙发" * 10,
    ))
    return docs


# --------------------------------------------------------------------------
# zh: repeated_line
# --------------------------------------------------------------------------

def zh_repeated_line():
    r = Rng(401)
    docs = []
    docs.append(lines(*(["该帖子已被删除"] * r.randint(18, 25))))
    docs.append(lines(*(["[图片]"] * 30 + ["（图片来自网友拍摄）"])))
    docs.append(lines(*(["加载中，请稍候……"] * 15 + ["网络连接超时，请检查网络后重试"] + ["加载中，请稍候……"] * 6)))
    docs.append(lines(*(["会员专区"] + ["此内容仅限会员查看，请先登录。"] * 25)))
    replies = ["支持楼主！"] * 38
    replies.insert(17, "楼主好人一生平安")
    docs.append(lines(*replies))
    docs.append(lines(*(["网络错误，请检查网络设置后重试（错误码：-1001）"] * 12)))
    docs.append(lines(*(["本站域名已更换，请访问新域名 www.example.cn 收藏不迷路"] * 50)))
    return docs


# --------------------------------------------------------------------------
# en: boilerplate
# --------------------------------------------------------------------------

def en_boilerplate():
    docs = []
    docs.append(block("""
Skip to main content
© 2024 Harbor Light Media, LLC. All rights reserved.
Terms of Use | Privacy Policy | Cookie Policy | Accessibility Statement | Do Not Sell or Share My Personal Information | Ad Choices
Contact Us | Advertise | Careers | Newsletters | RSS Feeds | Site Map
Harbor Light Media may earn a commission from purchases made through links on this site.
The material on this site may not be reproduced, distributed, transmitted, cached or otherwise used, except with the prior written permission of Harbor Light Media.
Back to top ↑
"""))
    docs.append(block("""
We value your privacy
We and our 847 partners use cookies and similar technologies to store and access information on your device, to personalise ads and content, measure ads and content, gain audience insights and develop products. You can accept all cookies, reject non-essential cookies or manage your preferences at any time by clicking "Cookie Settings" at the bottom of the page.
Accept All Cookies
Reject All
Cookie Settings
Share this article: Facebook | X | LinkedIn | Reddit | WhatsApp | Email | Copy link
Follow us on Instagram, TikTok and YouTube
The museum reopens on Saturday.
Privacy Policy · Terms of Service · © 2024 Northgate Press
"""))
    docs.append(block("""
Sign In | Register | Forgot your password?
Subscribe to our newsletter
Get the latest news, deals and updates delivered straight to your inbox.
Email address
Subscribe
By subscribing you agree to our Terms and Privacy Policy. You can unsubscribe at any time.
This site is protected by reCAPTCHA and the Google Privacy Policy and Terms of Service apply.
Already have an account? Log in
Don't have an account? Sign up for free
© 2019–2024 Brightwater Outdoors Inc. All Rights Reserved.
"""))
    docs.append(block("""
Skip to content
Menu
Posted on March 3, 2023 by admin
Posted in Uncategorized | Tagged news, update | Leave a comment
Thanks for stopping by.
Leave a Reply Cancel reply
Your email address will not be published. Required fields are marked *
Comment *
Name *
Email *
Website
Save my name, email, and website in this browser for the next time I comment.
Post Comment
Proudly powered by WordPress | Theme: Simple Blog by ThemeWorks.
"""))
    docs.append(block("""
Customer Service
Help Center
Track Your Order
Shipping & Delivery
Returns & Exchanges
Size Guide
Gift Cards
About Us
Our Story
Careers
Press
Sustainability
Affiliates
Stay Connected
Facebook Instagram Pinterest YouTube
Prices and availability are subject to change without notice. Offers valid in the contiguous U.S. only.
© 2024 Maple & Finch Home Goods. All rights reserved.
Terms & Conditions | Privacy Notice | California Privacy Rights | Accessibility | Sitemap
"""))
    docs.append(block("""
Disclaimer: The information provided on this website is for general informational purposes only and does not constitute legal, financial or medical advice. We make no representations or warranties of any kind, express or implied, about the completeness, accuracy or reliability of the information.
All trademarks, logos and brand names are the property of their respective owners. All company, product and service names used in this website are for identification purposes only.
Some links on this page are affiliate links. As an Amazon Associate we earn from qualifying purchases.
Copyright © 2024 Quillstone Reviews. All rights reserved. Reproduction in whole or in part without permission is prohibited.
Privacy | Terms | Contact | About
"""))
    docs.append(block("""
You have reached your limit of free articles this month.
Subscribe now for unlimited access.
Just $1 for your first 4 weeks. Cancel anytime.
Subscribe Now
Already a subscriber? Log in
Print subscriber? Activate your digital access
Need help? Contact Customer Support
Support local journalism.
© 2024 The Riverside Courier. All rights reserved.
Terms of Service | Privacy Policy | Manage Cookies | Contact Us | Corrections
"""))
    return docs


# --------------------------------------------------------------------------
# en: symbol_spam
# --------------------------------------------------------------------------

def en_symbol_spam():
    r = Rng(111)
    docs = []
    docs.append(lines(
        "★★★★★ BEST DEALS ★★★★★",
        "$$$ SAVE 90% $$$ !!!!!!",
        "→→→ CLICK HERE ←←←",
        "✓ FREE SHIPPING ✓ NO FEES ✓ 100% GUARANTEED ✓",
        "♥" * 24,
        "!!! LIMITED TIME !!! ACT NOW !!!",
        "☆" * 24,
        ">>>>>>>>>> BUY NOW <<<<<<<<<<",
    ))
    docs.append(lines(
        "🚀🚀🚀 $MOON 100X GEM 🚀🚀🚀",
        "🌕🌕🌕 NEXT 1000X 🌕🌕🌕",
        "💎🙌💎🙌💎🙌💎🙌",
        "🔥 LP LOCKED 🔥 CONTRACT RENOUNCED 🔥 0% TAX 🔥",
        "💰💰💰 DON'T MISS OUT 💰💰💰",
        "👇👇👇 JOIN TG 👇👇👇",
        "📈📈📈📈📈📈📈📈📈📈",
        "🚀" * 16,
    ))
    docs.append(block(r"""
#####    ###   #      #####      ###    ###   ###
#       #   #  #      #          ###    ###   ###
#####   #####  #      ####       ###    ###   ###
    #   #   #  #      #
#####   #   #  #####  #####      ###    ###   ###
*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*
   >>>  70% OFF  <<<   >>>  TODAY  <<<
*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*
"""))
    docs.append(lines(
        ">>> WIN BIG <<< ||| 💎💎💎 ||| $$$ JACKPOT $$$ ||| 💎💎💎 |||",
        "☎ CALL NOW ☎ 1-800-000-0000 ☎ 24/7 ☎",
        "=" * 36,
        "[[[ BONUS ]]] [[[ BONUS ]]] [[[ BONUS ]]]",
        "■□■□■□■□■□■□■□■□■□■□",
        "♠♣♥♦ ♠♣♥♦ ♠♣♥♦ ♠♣♥♦ ♠♣♥♦",
        "=" * 36,
        "$$$ $$$ $$$ $$$ $$$ $$$ $$$ $$$",
    ))
    rows = ["♥♥♥ xoxo ♥♥♥"]
    bits = ["~*~*~*~", "♡♡♡", ":) :) :)", "<3 <3 <3", "xD xD", "^_^ ^_^", "(*^▽^*)", "☆彡"]
    for i in range(12):
        rows.append(" ".join(r.choice(bits) for _ in range(r.randint(3, 6))))
    rows.append("~*~*~*~ luv u 4ever ~*~*~*~")
    docs.append(lines(*rows))
    docs.append(lines(
        "=" * 32,
        "-" * 32,
        "*" * 32,
        "!" * 20,
        "?" * 20,
        "#" * 32,
        "~ ~ ~ ~ ~ ~ ~ ~ ~ ~ ~ ~ ~ ~ ~ ~",
        "+" * 32,
        "bump",
        "=" * 32,
    ))
    docs.append(lines(
        "▼▼▼ DOWNLOAD LINKS ▼▼▼",
        "►►► Mirror 1: hxxp://files.example.com/xY7kQ ◄◄◄",
        "►►► Mirror 2: hxxp://dl.example.net/a9Bz ◄◄◄",
        "►►► Mirror 3: hxxp://upload.example.org/Zq42 ◄◄◄",
        "●●● pass: example ●●● ○○○ 100% WORKING ○○○",
        "▲" * 20,
        "✔✔✔ NO VIRUS ✔✔✔ NO SURVEY ✔✔✔",
        "▼" * 20,
    ))
    return docs


# --------------------------------------------------------------------------
# en: navigation_menu
# --------------------------------------------------------------------------

def en_navigation_menu():
    docs = []
    docs.append(lines(
        "Home | About | Services | Portfolio | Blog | Testimonials | FAQ | Contact",
        "Services: Web Design | SEO | Hosting | Maintenance | E-commerce | Branding",
        "Call us: (555) 010-0199 | Mon–Fri 9am–5pm",
        "Home | About | Services | Portfolio | Blog | Contact",
    ))
    docs.append(lines(
        "Home › Products › Kitchen › Cookware › Frying Pans › 10-inch Nonstick",
        "Shop by Category",
        "Cookware", "Bakeware", "Cutlery", "Small Appliances", "Kitchen Tools",
        "Food Storage", "Dinnerware", "Glassware", "Linens", "Coffee & Tea", "Clearance",
        "Shop by Brand",
        "View All Brands »",
    ))
    docs.append(lines(
        "Sitemap",
        "Home",
        "About Us", "  Our Team", "  History", "  Mission & Values", "  Annual Reports",
        "Programs", "  Youth Sports", "  Adult Leagues", "  Summer Camps", "  Swim Lessons",
        "Facilities", "  Aquatic Center", "  Fitness Center", "  Fields & Courts",
        "Membership", "  Rates", "  Financial Assistance", "  Join Online",
        "Get Involved", "  Volunteer", "  Donate", "  Events",
        "Contact", "  Locations & Hours", "  Staff Directory",
    ))
    docs.append(lines(
        "Browse A–Z",
        " | ".join([chr(c) for c in range(ord("A"), ord("Z") + 1)] + ["0–9"]),
        "Browse by topic: Arts · Business · Climate · Education · Health · Politics · Science · Sports · Technology · Travel",
        "Most popular: Latest | Trending | Editor's Picks | Video | Podcasts | Newsletters",
    ))
    docs.append(lines(
        "Admissions · Academics · Research · Campus Life · Athletics · Alumni · Giving · News · Events · Directory",
        "Undergraduate · Graduate · Online · Continuing Education · International Students",
        "Quick Links: Library · Bookstore · Calendar · Campus Map · Careers · Student Portal · Webmail · Canvas",
        "Apply · Visit · Request Info",
    ))
    docs.append(lines(
        "« Previous 1 2 3 4 5 … 48 Next »",
        "Tags: gardening, tomatoes, raised beds, compost, seeds, spring, vegetables, herbs, pruning, pests, organic, watering, soil",
        "Archives: January 2024 | December 2023 | November 2023 | October 2023 | September 2023 | August 2023",
        "Categories: Beginner (34) | Containers (12) | Flowers (27) | Tools (9) | Vegetables (58)",
        "« Previous 1 2 3 4 5 … 48 Next »",
    ))
    docs.append(lines(
        "» Men  » Women  » Kids  » Home  » Beauty  » Sale",
        "» New Arrivals  » Best Sellers  » Gift Guide  » Outlet",
        "» Tops  » Bottoms  » Dresses  » Outerwear  » Shoes  » Accessories",
        "» My Account  » Order Status  » Wishlist  » Store Locator  » Help",
        "Home › Women › Outerwear › Jackets",
    ))
    return docs


# --------------------------------------------------------------------------
# en: number_table
# --------------------------------------------------------------------------

def en_number_table():
    docs = []

    r = Rng(211)
    tickers = ["ABXT", "BRLN", "CDQ", "DMRK", "EVNS", "FLXO", "GRDN", "HLMR", "IQTV", "JNPS",
               "KTRA", "LVMX", "MNDO", "NRVA", "OPLX", "PQRS"]
    rows = ["Symbol  Last     Chg     %Chg    Volume      Open     High     Low"]
    for t in tickers:
        prev = r.uniform(5, 400)
        pct = r.uniform(-7, 7)
        last = prev * (1 + pct / 100)
        hi = max(last, prev) * (1 + r.uniform(0, 0.02))
        lo = min(last, prev) * (1 - r.uniform(0, 0.02))
        rows.append("%-7s %-8.2f %-7s %-7s %-11s %-8.2f %-8.2f %.2f" % (
            t, last, "%+.2f" % (last - prev), "%+.2f%%" % pct, "{:,}".format(r.randint(100000, 40000000)),
            r.uniform(lo, hi), hi, lo))
    docs.append(lines(*rows))

    r = Rng(212)
    teams = ["BOS", "NYY", "TB", "TOR", "BAL", "CLE", "MIN", "DET", "KC", "CWS", "HOU", "SEA",
             "TEX", "LAA", "OAK", "ATL"]
    rows = ["Final scores, Saturday", "        1 2 3 4 5 6 7 8 9   R  H  E"]
    for g in range(8):
        for side in (teams[2 * g], teams[2 * g + 1]):
            inn = [r.choice([0, 0, 0, 0, 1, 1, 2, 3]) for _ in range(9)]
            rows.append("%-6s  %s  %2d %2d %2d" % (side, " ".join(str(x) for x in inn), sum(inn),
                                                   sum(inn) + r.randint(3, 8), r.randint(0, 2)))
        rows.append("")
    docs.append(lines(*rows).rstrip("\n"))

    r = Rng(213)
    stations = ["Union Station", "Midtown", "Park Ave", "Riverside", "Oak Hill", "Fairview",
                "Cedar Jct", "Millbrook", "Lakeport"]
    starts = [5 * 60 + 40 + 35 * k for k in range(8)]
    rows = ["Train            " + "  ".join("%4d" % (401 + 2 * k) for k in range(8))]
    for si, st in enumerate(stations):
        cells = []
        for k, s0 in enumerate(starts):
            m = s0 + si * 11 + (k % 3)
            cells.append("%02d:%02d" % (m // 60, m % 60))
        rows.append("%-16s %s" % (st, " ".join(cells)))
    docs.append(lines(*rows))

    r = Rng(214)
    items = ["2x4x8 SPF stud", "2x4x10 SPF", "2x6x8 SPF", "2x6x12 SPF", "4x4x8 PT post",
             "1x6x8 cedar fence", "1/2 in. drywall 4x8", "5/8 in. drywall 4x8", "7/16 in. OSB 4x8",
             "23/32 in. plywood 4x8", "1/2 in. plywood 4x8", "2x8x12 PT", "2x10x16 PT",
             "2x12x16 PT", "5/4x6x16 deck board"]
    rows = ["SKU      Item                     Each     10+      50+"]
    for it in items:
        p = r.uniform(3, 70)
        rows.append("%06d   %-24s %-8.2f %-8.2f %.2f" % (r.randint(100000, 999999), it, p, p * 0.95, p * 0.9))
    docs.append(lines(*rows))

    r = Rng(215)
    rows = ["Date,Hi,Lo,Precip (in),Wind (mph),Humidity (%)"]
    for d in range(1, 31):
        hi = r.randint(58, 84)
        rows.append("2024-06-%02d,%d,%d,%.2f,%d,%d" % (d, hi, hi - r.randint(10, 22),
                                                      r.choice([0, 0, 0, 0.02, 0.11, 0.35, 1.2]),
                                                      r.randint(3, 21), r.randint(30, 92)))
    docs.append(lines(*rows))

    r = Rng(216)
    clubs = ["Ashford", "Bramley", "Carrow", "Dunmore", "Eastleigh Utd", "Fenwick", "Garston",
             "Holloway", "Ingleby", "Kelso Town", "Langford", "Marsden", "Norbury", "Oakham",
             "Penrith", "Redcliffe"]
    st = []
    for c in clubs:
        w = r.randint(4, 22)
        d = r.randint(3, 12)
        l_ = max(0, 34 - w - d)
        gf = r.randint(25, 70)
        ga = r.randint(22, 66)
        st.append((3 * w + d, gf - ga, c, w + d + l_, w, d, l_, gf, ga))
    st.sort(key=lambda x: (-x[0], -x[1]))
    rows = ["Pos Team           P  W  D  L  GF GA  GD Pts"]
    for i, (pts, gd, c, p, w, d, l_, gf, ga) in enumerate(st, 1):
        rows.append("%2d  %-13s %2d %2d %2d %2d %3d %2d %+3d %3d" % (i, c, p, w, d, l_, gf, ga, gd, pts))
    docs.append(lines(*rows))

    r = Rng(217)
    rows = ["Place  Bib   Gun time  Net time  Pace/mi  Div  Div place"]
    t = 2 * 3600 + 21 * 60 + 7
    for i in range(1, 31):
        t += r.randint(5, 95)
        net = t - r.randint(0, 40)
        rows.append("%5d  %4d  %d:%02d:%02d   %d:%02d:%02d   %d:%02d    %s  %d" % (
            i, r.randint(100, 4999), t // 3600, t // 60 % 60, t % 60,
            net // 3600, net // 60 % 60, net % 60, (net // 26) // 60 % 60, (net // 26) % 60,
            r.choice(["M30", "M35", "M40", "F30", "F35", "M25"]), r.randint(1, 12)))
    docs.append(lines(*rows))
    return docs


# --------------------------------------------------------------------------
# en: code_in_prose
# --------------------------------------------------------------------------

def en_code_in_prose():
    docs = []
    docs.append("Here's the function I'm using, it segfaults when the list is empty:\n" + block(r"""
#include <stdlib.h>

struct node {
    int value;
    struct node *next;
};

int list_sum(const struct node *head) {
    int total = head->value;
    for (const struct node *p = head->next; p != NULL; p = p->next) {
        total += p->value;
    }
    return total;
}

void list_free(struct node *head) {
    while (head) {
        struct node *next = head->next;
        free(head);
        head = next;
    }
}
"""))
    docs.append(block(r"""
from flask import Flask, jsonify, request

app = Flask(__name__)
ITEMS = {}


@app.route("/items/<int:item_id>", methods=["GET", "PUT"])
def item(item_id):
    if request.method == "PUT":
        ITEMS[item_id] = request.get_json(force=True)
        return jsonify({"ok": True, "id": item_id}), 201
    if item_id not in ITEMS:
        return jsonify({"error": "not found"}), 404
    return jsonify(ITEMS[item_id])


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8080, debug=True)
""") + "\nThat's it, run it and hit /items/1.")
    docs.append(block(r"""
async function loadUsers(page = 1) {
  const res = await fetch(`/api/users?page=${page}`, {
    headers: { Accept: "application/json" },
  });
  if (!res.ok) {
    throw new Error(`HTTP ${res.status}`);
  }
  const { data, next } = await res.json();
  const list = document.querySelector("#users");
  for (const u of data) {
    const li = document.createElement("li");
    li.textContent = `${u.firstName} ${u.lastName} <${u.email}>`;
    list.appendChild(li);
  }
  if (next) {
    await loadUsers(page + 1);
  }
}

loadUsers().catch((err) => console.error(err));
"""))
    docs.append("package.json:\n" + block(r"""
{
  "name": "my-app",
  "version": "0.3.1",
  "private": true,
  "scripts": {
    "dev": "vite",
    "build": "tsc && vite build",
    "test": "vitest run",
    "lint": "eslint src --ext .ts,.tsx"
  },
  "dependencies": {
    "react": "^18.2.0",
    "react-dom": "^18.2.0"
  },
  "devDependencies": {
    "typescript": "^5.3.3",
    "vite": "^5.0.12",
    "vitest": "^1.2.1"
  }
}
"""))
    docs.append(block(r"""
:root { --accent: #0a66c2; --bg: #fafafa; }
html, body { margin: 0; padding: 0; background: var(--bg); }
.card {
  display: flex;
  flex-direction: column;
  gap: 0.75rem;
  padding: 1.25rem;
  border: 1px solid #e3e3e3;
  border-radius: 8px;
}
.card:hover { box-shadow: 0 4px 12px rgba(0, 0, 0, 0.08); }
.card .title { font-weight: 600; color: var(--accent); }
@media (max-width: 600px) {
  .card { padding: 0.75rem; }
}
""") + "\nPaste this at the end of your theme's style.css.")
    docs.append(block(r"""
#!/usr/bin/env bash
set -euo pipefail

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

deploy() {
  local host="$1"
  log "deploying to ${host}"
  rsync -az --delete ./dist/ "deploy@${host}:/srv/www/"
  ssh "deploy@${host}" 'sudo systemctl reload nginx' || {
    log "reload failed on ${host}"
    return 1
  }
}

for h in web1 web2 web3; do
  deploy "$h"
done
"""))
    docs.append("Solved it, posting for anyone who lands here from search:\n" + block(r"""
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	data, err := os.ReadFile("input.txt")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	counts := map[string]int{}
	for _, w := range strings.Fields(string(data)) {
		counts[strings.ToLower(w)]++
	}
	for w, n := range counts {
		fmt.Printf("%s\t%d\n", w, n)
	}
}
"""))
    return docs


# --------------------------------------------------------------------------
# en: mojibake
# --------------------------------------------------------------------------

def en_mojibake():
    docs = []
    good = "It’s finally spring, and the café on the corner has reopened with a new menu."
    bad = ("Itâ€™s been a long winter. The owner told us â€œwe wanted a fresh startâ€ and "
           "she means it â€” everything from the crÃ¨me brÃ»lÃ©e to the coffee is new.")
    bad2 = utf8_as("Prices start at €4 for a “proper” flat white, and the résumé of the new "
                   "chef is impressive.", "cp1252")
    docs.append(lines(good, bad, bad2, "Open Tue–Sun, 8am–4pm."))
    # Latin-1 bytes read as UTF-8: lossy U+FFFD; a correct paragraph after it.
    docs.append(lines(
        "Customer review ★★★★☆",
        legacy_as_utf8("The naïve charm of this little hôtel in Sète won us over: the façade "
                       "is pastel, the café crème is excellent and the staff are très gentils.",
                       "latin-1"),
        "We’d go back — but next time we’ll book the room with the sea view.",
    ))
    # Double-encoded paragraph next to a correct one.
    docs.append(lines(
        "Résumé tips from our careers desk",
        utf8_as(utf8_as("Don’t list every job you’ve ever had. A résumé should fit on one "
                        "page — two at most — and every line should earn its place.", "cp1252"),
                "cp1252"),
        "Keep the layout simple; recruiters spend seconds, not minutes, on each résumé.",
    ))
    # Recipe: Â° and Â½ next to correct ° and ½.
    docs.append(lines(
        "Lemon drizzle loaf",
        "Preheat the oven to 350°F (175°C).",
        utf8_as("Cream ½ cup butter with ¾ cup sugar, then beat in 2 eggs and the zest of "
                "1 lemon. Fold in 1½ cups flour and bake at 350°F for 45–50 minutes.", "latin-1"),
        "Drizzle with ¼ cup lemon juice mixed with ⅓ cup icing sugar while still warm.",
    ))
    # Names list: half garbled, half correct.
    names_bad = ["José García", "François Müller", "Renée O’Brien", "Søren Kierkegård", "Zoë Ångström"]
    names_ok = ["Chloé Dubois", "Jürgen Weiß", "Inés Peña", "Łukasz Wróbel"]
    docs.append(lines(
        "Conference speakers 2024",
        *([utf8_as(n, "cp1252") + " — keynote" for n in names_bad[:2]]
          + [n + " — panel" for n in names_ok]
          + [utf8_as(n, "cp1252") + " — workshop" for n in names_bad[2:]])
    ))
    # Lossy newsletter: some curly quotes lost, others fine.
    docs.append(lines(
        "We\ufffdre excited to announce our \ufffdSpring Sale\ufffd starts Monday!",
        "Everything in store is 20% off \ufffd including clearance.",
        "Can’t make it in? Our online shop runs the same deals, and shipping is free over $50.",
        "See you soon \ufffd The Team",
    ))
    # cp437 view of UTF-8 plus cp1252 pairs plus correct characters.
    docs.append(lines(
        "README for the plugin",
        utf8_as("Don’t forget to restart — settings won’t apply until you do.", "cp437"),
        utf8_as("Tested with café-style menus, naïve layouts and “smart quotes”.", "cp1252"),
        "Licence: MIT © 2021 the authors. Questions? Open an issue – we’re happy to help.",
    ))
    # Chinese seller listing in an English store: 锟斤拷 in the middle.
    docs.append(lines(
        "Women's Cotton Cardigan Sweater - Long Sleeve",
        "Material: " + kunkun("纯棉") + " 100% Cotton",
        "Color: " + kunkun("米白色") + " / Beige",
        "Size: S M L XL (please check the size chart \ufffd Asian sizes run small)",
        "Package included: 1 x cardigan " + kunkun("包邮"),
        "Shipping: 7–15 business days",
    ))
    return docs


# --------------------------------------------------------------------------
# en: wrong_language (Chinese, French, German, Spanish, Russian)
# --------------------------------------------------------------------------

def en_wrong_language():
    return [
        # Chinese
        "近年来，越来越多的年轻人选择在周末走出城市，去郊外徒步或露营。与传统的旅游方式相比，"
        "这种短途出行花费不高，时间也更灵活，只需要准备好帐篷、睡袋和简单的炊具，就能在山林间"
        "度过一个安静的夜晚。不过，专家提醒，户外活动并非没有风险。出发前应查看天气预报，了解"
        "路线情况，并告知家人行程安排；在野外用火时更要格外小心，离开前务必确认火源完全熄灭。"
        "此外，露营者还应带走自己产生的垃圾，尽量减少对自然环境的影响，做到“除了脚印，什么也不留下”。",
        "我的家乡在江南的一个小镇，镇上有一条穿镇而过的小河，河上架着几座石桥。小时候，每到"
        "夏天的傍晚，大人们就搬着竹椅坐在河边乘凉，孩子们在桥上跑来跑去，有时还会跳进河里"
        "游泳。河边有一家开了几十年的茶馆，老人们每天早上都会去那里喝茶、聊天、听评书。后来"
        "我去外地读书、工作，回家的次数越来越少。去年春节回去，发现茶馆还在，只是喝茶的人少了"
        "许多，老板也换成了他的儿子。他说，只要还有老街坊来，这家茶馆就会一直开下去。",
        # French
        "Le printemps est arrivé plus tôt que prévu dans la vallée : depuis une semaine, les "
        "cerisiers sont en fleurs et les terrasses des cafés se remplissent dès midi. Les "
        "agriculteurs, eux, restent prudents. Une gelée tardive, comme celle d'avril dernier, "
        "pourrait détruire une bonne partie de la récolte. Certains ont déjà installé des "
        "bougies entre les rangées d'arbres pour réchauffer l'air pendant les nuits les plus "
        "froides. En attendant, les promeneurs profitent du soleil et les marchés du samedi "
        "retrouvent leurs étals de fraises et d'asperges.",
        # German
        "Die Stadtbibliothek bleibt wegen umfangreicher Renovierungsarbeiten vom 1. bis zum "
        "28. Februar geschlossen. In dieser Zeit werden die Leseräume neu gestaltet, die "
        "Beleuchtung erneuert und ein barrierefreier Eingang gebaut. Ausgeliehene Medien können "
        "während der Schließzeit am Rückgabeautomaten neben dem Haupteingang zurückgegeben "
        "werden; Mahngebühren fallen in diesem Zeitraum nicht an. Die Onleihe steht weiterhin "
        "uneingeschränkt zur Verfügung, sodass E-Books und Hörbücher wie gewohnt ausgeliehen "
        "werden können. Wir bitten um Ihr Verständnis und freuen uns darauf, Sie ab März in den "
        "neuen Räumen begrüßen zu dürfen.",
        "Wer im Herbst durch den Schwarzwald wandert, wird mit einer besonderen Farbenpracht "
        "belohnt. Die Buchen leuchten gelb und orange, während die Tannen ihr dunkles Grün "
        "behalten. Viele Wege sind gut ausgeschildert und auch für Familien mit Kindern "
        "geeignet. Allerdings sollte man die Tageslänge nicht unterschätzen: Schon gegen "
        "siebzehn Uhr wird es im Wald merklich dunkler. Festes Schuhwerk, eine warme Jacke und "
        "ausreichend Wasser gehören deshalb in jeden Rucksack. Einkehrmöglichkeiten gibt es "
        "unterwegs zwar einige, doch manche Hütten haben nur am Wochenende geöffnet.",
        # Spanish
        "El ayuntamiento ha anunciado que a partir del próximo lunes el mercado central abrirá "
        "también por las tardes, de cinco a ocho, de martes a viernes. La medida responde a la "
        "petición de muchos vecinos que, por motivos de trabajo, no pueden hacer la compra por "
        "la mañana. Los comerciantes han recibido la noticia con opiniones divididas: algunos "
        "creen que atraerá a nuevos clientes, mientras que otros temen que el aumento de horas "
        "no compense los gastos. Durante los primeros tres meses se evaluará la afluencia de "
        "público antes de decidir si el nuevo horario se mantiene de forma definitiva.",
        "Para preparar una buena tortilla de patatas no hacen falta muchos ingredientes, pero sí "
        "algo de paciencia. Primero se pelan y se cortan las patatas en láminas finas, y se "
        "fríen a fuego lento en abundante aceite de oliva junto con la cebolla, si se desea. "
        "Cuando estén tiernas, se escurren y se mezclan con los huevos batidos y una pizca de "
        "sal. Se deja reposar la mezcla unos minutos y después se cuaja en una sartén pequeña, "
        "dándole la vuelta con ayuda de un plato. Lo ideal es que quede jugosa por dentro.",
        # Russian
        "В эти выходные в городском парке пройдёт традиционная осенняя ярмарка. Местные фермеры "
        "привезут мёд, овощи, домашний сыр и свежую выпечку, а ремесленники представят изделия "
        "из дерева, глины и льна. Для детей подготовлены мастер-классы и кукольный спектакль, "
        "который начнётся в полдень у главной сцены. Организаторы напоминают, что парковка рядом "
        "с парком будет закрыта, поэтому лучше добираться на общественном транспорте: автобусы "
        "будут ходить чаще обычного. Вход на ярмарку свободный, она продлится с десяти утра до "
        "шести вечера.",
    ]


# --------------------------------------------------------------------------
# en: repeated_ngram
# --------------------------------------------------------------------------

def en_repeated_ngram():
    r = Rng(311)
    docs = []
    docs.append(repeat_sep("buy cheap watches online", r.randint(35, 45)))
    docs.append(cycle_join(["best seo services", "best seo company", "best seo agency",
                            "best seo services near me"], r.randint(40, 55), " | "))
    docs.append("Free download " + cycle_join(
        ["free download", "full version free download", "free download", "crack free download",
         "free download for pc"], r.randint(50, 65), " "))
    docs.append(("click here " * r.randint(60, 80)).strip())
    cities = ["paris", "rome", "london", "berlin", "madrid", "lisbon", "vienna", "prague"]
    parts = []
    for i in range(48):
        c = cities[i % len(cities)]
        parts.append(r.choice(["cheap flights to %s", "cheap %s flights", "cheap flights %s"]) % c)
    docs.append(" ".join(parts))
    docs.append(lines(
        repeat_sep("lol", 40),
        repeat_sep("first", 25),
        repeat_sep("lmao", 30),
    ))
    docs.append(cycle_join(["weight loss pills", "fast weight loss pills", "weight loss pills that work",
                            "weight loss pills for women", "best weight loss pills"],
                           r.randint(40, 50), ", ") + ".")
    return docs


# --------------------------------------------------------------------------
# en: repeated_line
# --------------------------------------------------------------------------

def en_repeated_line():
    r = Rng(411)
    docs = []
    docs.append(lines(*(["This video is not available in your country."] * r.randint(18, 24))))
    docs.append(lines(*(["Please enable JavaScript to view this page."] + ["Loading..."] * 30)))
    thread = []
    for i in range(26):
        thread.append("[removed]" if i in (7, 19) else "[deleted]")
    docs.append(lines(*thread))
    docs.append(lines(*(["Warning: mysql_connect(): Access denied for user 'root'@'localhost' "
                         "(using password: YES) in /var/www/html/includes/db.php on line 12"] * 15
                        + ["Fatal error: Call to a member function query() on null in "
                           "/var/www/html/index.php on line 40"])))
    docs.append(lines(*(["Out of stock — notify me when available"] * 24)))
    docs.append(lines(*(["Read more »"] * 40)))
    comments = ["Great post, thanks for sharing!"] * 35
    comments.insert(12, "Very informative, bookmarked.")
    docs.append(lines(*comments))
    return docs


# --------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------

MOJI_PAIR = re.compile(r"â€.|Ã.|Â.")
PROPER = set("éèàçüöñíóúâêîôûëïäåøæß’‘“”—–…½¼¾°€ł")


def repairable_by_one_redecode(text):
    for enc in ("latin-1", "cp1252", "gbk", "big5", "cp437"):
        try:
            fixed = text.encode(enc).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if fixed != text:
            return True
    return False


def check_mojibake(doc_id, text):
    n_fffd = text.count("\ufffd")
    n_pairs = len(MOJI_PAIR.findall(text))
    proper_elsewhere = bool(PROPER & set(MOJI_PAIR.sub("", text)))
    ok = n_fffd >= 3 or "锟斤拷" in text or (n_pairs >= 3 and proper_elsewhere)
    assert ok, (doc_id, n_fffd, n_pairs, proper_elsewhere)
    assert not repairable_by_one_redecode(text), doc_id


def check(lang, docs):
    cats = collections.Counter(d["category"] for d in docs)
    for c in CATEGORIES:
        assert 6 <= cats[c] <= 8, (lang, c, cats[c])
    for d in docs:
        t = d["text"]
        assert t == t.strip() and t, d["id"]
        assert 100 <= len(t) <= 3000, (d["id"], len(t))
        if d["category"] == "mojibake":
            check_mojibake(d["id"], t)
        if d["category"] == "wrong_language":
            assert len(t) >= 200, (d["id"], len(t))
        if d["category"] == "repeated_line":
            top = collections.Counter(t.split("\n")).most_common(1)[0][1]
            assert 10 <= top <= 50, (d["id"], top)
    with_braces = sum(1 for d in docs if d["category"] == "code_in_prose" and "{" in d["text"])
    assert with_braces * 2 > cats["code_in_prose"], lang


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

BUILDERS = {
    "zh": [zh_boilerplate, zh_symbol_spam, zh_navigation_menu, zh_number_table,
           zh_code_in_prose, zh_mojibake, zh_wrong_language, zh_repeated_ngram,
           zh_repeated_line],
    "en": [en_boilerplate, en_symbol_spam, en_navigation_menu, en_number_table,
           en_code_in_prose, en_mojibake, en_wrong_language, en_repeated_ngram,
           en_repeated_line],
}


def build(lang):
    docs = []
    for cat, fn in zip(CATEGORIES, BUILDERS[lang]):
        assert fn.__name__ == "%s_%s" % (lang, cat), fn.__name__
        for text in fn():
            docs.append({"id": "junk-%s-%03d" % (lang, len(docs) + 1), "category": cat, "text": text})
    check(lang, docs)
    return docs


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out_dir = os.path.join(root, "fixtures", "quality")
    os.makedirs(out_dir, exist_ok=True)
    for lang in ("zh", "en"):
        docs = build(lang)
        path = os.path.join(out_dir, "junk_%s.jsonl" % lang)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for d in docs:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
        counts = collections.Counter(d["category"] for d in docs)
        print("%s: %d docs -> %s" % (lang, len(docs), os.path.relpath(path, root)))
        for c in CATEGORIES:
            lens = [len(d["text"]) for d in docs if d["category"] == c]
            print("  %-16s %d  chars %d-%d" % (c, counts[c], min(lens), max(lens)))


if __name__ == "__main__":
    main(sys.argv)
